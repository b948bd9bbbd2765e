"""Import every built-in option so that its builder and schema are registered."""

from dlrun import initializers, loggers, models, optim, regularizers, schedulers  # noqa: F401
from dlrun.data import digits, synthetic, tabular, text, vision  # noqa: F401
