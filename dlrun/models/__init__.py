"""Models: each module registers its builders in MODELS; importing this package loads them."""

from dlrun.models import char_rnn, deep_mlp, lenet, linear, mlp  # noqa: F401  (registers the models)
