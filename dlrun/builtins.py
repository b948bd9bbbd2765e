"""Import every built-in option, so that each module registers its builders (models, data
sets, optimizers, regularizers, trackers, early stopping)."""

from dlrun.data import digits, synthetic, tabular, text, vision  # noqa: F401
from dlrun.models import char_rnn, deep_mlp, initializers, lenet, linear, mlp  # noqa: F401
from dlrun.optim import optimizers, regularizers, schedulers  # noqa: F401
from dlrun.outputs import trackers  # noqa: F401
from dlrun.training import early_stopping  # noqa: F401
