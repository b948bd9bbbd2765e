"""The schema of every built-in option, by group and name.

Hydra composes a config against these dataclasses (stored as `schema/<group>/<name>`, which
each option's YAML extends), so a misspelt key or a wrong type fails before anything is
built. They import no torch: `dlrun --help` and every config error answer at once. The
registries (registry.py) check a builder's config against the same schema.
"""

from __future__ import annotations

from dlrun.config.options.data import (
    CsvConfig,
    CubicConfig,
    DigitsConfig,
    PolynomialConfig,
    SyntheticLinRegConfig,
    TextConfig,
    VisionDatasetConfig,
    WineConfig,
)
from dlrun.config.options.init import (
    ConstantConfig,
    DefaultInitConfig,
    KaimingConfig,
    NormalConfig,
    OnesConfig,
    UniformConfig,
    XavierNormalConfig,
    XavierUniformConfig,
    ZerosConfig,
)
from dlrun.config.options.loggers import MlflowConfig, TensorBoardConfig
from dlrun.config.options.models import (
    CharRNNConfig,
    DeepMLPConfig,
    LeNetConfig,
    LinearRegressionConfig,
    MLPConfig,
    PolyRegressionConfig,
    SoftmaxRegressionConfig,
)
from dlrun.config.options.optimizers import AdagradConfig, AdamConfig, RMSpropConfig, SGDConfig
from dlrun.config.options.regularizers import (
    DropoutConfig,
    EarlyStoppingConfig,
    GradClipConfig,
    L1Config,
    L2Config,
)
from dlrun.config.options.schedulers import (
    CosineConfig,
    ExponentialConfig,
    MultiStepConfig,
    NoneConfig,
    PlateauConfig,
    StepConfig,
)

SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": {
        "csv": CsvConfig,
        "cubic": CubicConfig,
        "digits": DigitsConfig,
        "fashion_mnist": VisionDatasetConfig,
        "mnist": VisionDatasetConfig,
        "polynomial": PolynomialConfig,
        "synthetic_linreg": SyntheticLinRegConfig,
        "text": TextConfig,
        "wine": WineConfig,
    },
    "init": {
        "constant": ConstantConfig,
        "default": DefaultInitConfig,
        "kaiming_normal": KaimingConfig,
        "kaiming_uniform": KaimingConfig,
        "normal": NormalConfig,
        "ones": OnesConfig,
        "uniform": UniformConfig,
        "xavier_normal": XavierNormalConfig,
        "xavier_uniform": XavierUniformConfig,
        "zeros": ZerosConfig,
    },
    "logger": {
        "mlflow": MlflowConfig,
        "tensorboard": TensorBoardConfig,
    },
    "model": {
        "char_rnn": CharRNNConfig,
        "deep_mlp": DeepMLPConfig,
        "lenet": LeNetConfig,
        "linear_regression": LinearRegressionConfig,
        "mlp": MLPConfig,
        "poly_regression": PolyRegressionConfig,
        "softmax_regression": SoftmaxRegressionConfig,
    },
    "optimizer": {
        "adagrad": AdagradConfig,
        "adam": AdamConfig,
        "adamw": AdamConfig,
        "momentum": SGDConfig,
        "nesterov": SGDConfig,
        "rmsprop": RMSpropConfig,
        "sgd": SGDConfig,
    },
    "regularizer": {
        "dropout": DropoutConfig,
        "early_stopping": EarlyStoppingConfig,
        "grad_clip": GradClipConfig,
        "l1": L1Config,
        "l2": L2Config,
    },
    "scheduler": {
        "cosine": CosineConfig,
        "exponential": ExponentialConfig,
        "multistep": MultiStepConfig,
        "none": NoneConfig,
        "plateau": PlateauConfig,
        "step": StepConfig,
    },
}
