"""Models: each module registers its builders in MODELS; importing this package loads them."""

from dlrun.models import lenet, mlp  # noqa: F401  (registers the models)
