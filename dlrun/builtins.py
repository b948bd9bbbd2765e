"""Import every built-in option so that its builder and schema are registered."""

from dlrun import initializers, models, optim, regularizers  # noqa: F401
from dlrun.data import digits, vision  # noqa: F401
