"""Models, initialisers, optimizer parameter groups and regularizers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import INITS, MODELS, OPTIMIZERS, REGULARIZERS
from dlrun.data.dataset import DatasetMeta
from dlrun.errors import DlrunError
from dlrun.optim.optimizers import param_groups

GREY_28 = DatasetMeta(task="classification", input_shape=(1, 28, 28), num_classes=10)
RGB_32 = DatasetMeta(task="classification", input_shape=(3, 32, 32), num_classes=7)

LENET = {"name": "lenet", "activation": "sigmoid", "pool": "avg", "batch_norm": False}
MLP = {"name": "mlp", "hidden": [256], "activation": "relu", "dropout": [0.0], "batch_norm": False}
SGD = {
    "name": "sgd",
    "lr": 0.1,
    "momentum": 0.0,
    "dampening": 0.0,
    "weight_decay": 0.01,
    "nesterov": False,
}
ADAM = {
    "name": "adam",
    "lr": 0.001,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.01,
    "amsgrad": False,
}


def layer_types(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules()]


# --- LeNet ---------------------------------------------------------------------------


def test_lenet_output_shape_for_28x28() -> None:
    torch.manual_seed(0)
    model = MODELS.build(LENET, GREY_28)
    out = model(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)
    # The classic sizes: 16 channels of 5x5 into the first linear layer.
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (16 * 5 * 5, 120),
        (120, 84),
        (84, 10),
    ]
    assert nn.Sigmoid in layer_types(model)
    assert nn.AvgPool2d in layer_types(model)
    assert nn.ReLU not in layer_types(model)


def test_lenet_sized_from_meta_for_rgb_32x32() -> None:
    model = MODELS.build(LENET, RGB_32)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 3
    out = model(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, 7)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[0].in_features == 16 * 6 * 6


@pytest.mark.parametrize("size", [12, 13, 17, 31])
def test_lenet_accepts_odd_and_small_sizes(size: int) -> None:
    meta = DatasetMeta(task="classification", input_shape=(1, size, size), num_classes=3)
    model = MODELS.build(LENET, meta)
    assert model(torch.rand(2, 1, size, size)).shape == (2, 3)


def test_lenet_batch_norm_adds_norm_layers() -> None:
    model = MODELS.build({**LENET, "batch_norm": True}, GREY_28)
    bn2d = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bn1d = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in bn2d] == [6, 16]
    assert [m.num_features for m in bn1d] == [120, 84]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    plain = MODELS.build(LENET, GREY_28)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in plain.modules())


def test_lenet_relu_max_variant() -> None:
    model = MODELS.build({**LENET, "activation": "relu", "pool": "max"}, GREY_28)
    types = layer_types(model)
    assert types.count(nn.ReLU) == 4
    assert types.count(nn.MaxPool2d) == 2
    assert nn.Sigmoid not in types
    assert nn.AvgPool2d not in types
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("size", [8, 11])
def test_lenet_too_small_images(size: int) -> None:
    meta = DatasetMeta(task="classification", input_shape=(1, size, size), num_classes=10)
    with pytest.raises(DlrunError, match=f"{size}x{size}"):
        MODELS.build(LENET, meta)


@pytest.mark.parametrize(("height", "width"), [(8, 28), (28, 11)])
def test_lenet_too_small_in_one_direction(height: int, width: int) -> None:
    meta = DatasetMeta(task="classification", input_shape=(1, height, width), num_classes=10)
    with pytest.raises(DlrunError, match=f"{height}x{width}"):
        MODELS.build(LENET, meta)


def test_lenet_non_square_images() -> None:
    meta = DatasetMeta(task="classification", input_shape=(2, 20, 36), num_classes=4)
    model = MODELS.build(LENET, meta)
    assert model(torch.rand(3, 2, 20, 36)).shape == (3, 4)


def test_lenet_rejects_tabular_input() -> None:
    meta = DatasetMeta(task="classification", input_shape=(20,), num_classes=2)
    with pytest.raises(DlrunError, match="model=mlp"):
        MODELS.build(LENET, meta)


@pytest.mark.parametrize(
    ("key", "value"), [("activation", "relux"), ("pool", "mean"), ("batch_norm", "maybe")]
)
def test_lenet_invalid_config_values(key: str, value: str) -> None:
    with pytest.raises(DlrunError) as info:
        MODELS.build({**LENET, key: value}, GREY_28)
    assert key in str(info.value)
    assert value in str(info.value)


# --- MLP -----------------------------------------------------------------------------


def test_mlp_shapes() -> None:
    model = MODELS.build(MLP, GREY_28)
    assert model(torch.rand(6, 784)).shape == (6, 10)
    assert model(torch.rand(6, 1, 28, 28)).shape == (6, 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 10)]
    assert nn.ReLU in layer_types(model)
    assert nn.Dropout not in layer_types(model)  # p = 0 adds no layer


def test_mlp_hidden_sizes_and_dropout_per_layer() -> None:
    cfg = {**MLP, "hidden": [64, 32, 16], "activation": "tanh", "dropout": [0.1, 0.0, 0.3]}
    model = MODELS.build(cfg, GREY_28)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 64),
        (64, 32),
        (32, 16),
        (16, 10),
    ]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.3]
    # The dropout follows the layer it belongs to: Linear(784,64) Tanh Dropout(0.1) ...
    names = [type(m).__name__ for m in model]
    assert names == [
        "Flatten",
        "Linear",
        "Tanh",
        "Dropout",
        "Linear",
        "Tanh",
        "Linear",
        "Tanh",
        "Dropout",
        "Linear",
    ]
    model.eval()
    assert model(torch.rand(2, 784)).shape == (2, 10)


def test_mlp_single_dropout_applies_to_every_layer() -> None:
    model = MODELS.build({**MLP, "hidden": [20, 20, 20], "dropout": [0.25]}, GREY_28)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25] * 3


def test_mlp_batch_norm() -> None:
    model = MODELS.build({**MLP, "hidden": [40, 30], "batch_norm": True}, GREY_28)
    assert [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d)] == [40, 30]


def test_mlp_no_hidden_layers_is_linear() -> None:
    model = MODELS.build({**MLP, "hidden": []}, RGB_32)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3 * 32 * 32, 7)]


def test_mlp_wrong_dropout_count() -> None:
    with pytest.raises(DlrunError, match="2 values for 3 hidden layers"):
        MODELS.build({**MLP, "hidden": [8, 8, 8], "dropout": [0.1, 0.2]}, GREY_28)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"dropout": [1.0]}, r"dropout=\[1.0\] has 1.0"),
        ({"dropout": [-0.1]}, r"dropout=\[-0.1\] has -0.1"),
        ({"hidden": [16, 0]}, r"model.hidden=\[16, 0\] has 0"),
    ],
)
def test_mlp_out_of_range_values(override: dict, match: str) -> None:
    with pytest.raises(DlrunError, match=match):
        MODELS.build({**MLP, **override}, GREY_28)


def test_mlp_invalid_activation_enum() -> None:
    with pytest.raises(DlrunError) as info:
        MODELS.build({**MLP, "activation": "relux"}, GREY_28)
    message = str(info.value)
    assert "relux" in message
    assert "activation" in message
    assert "relu" in message.replace("relux", "")  # the allowed values are listed


def test_mlp_wrong_type_for_hidden() -> None:
    with pytest.raises(DlrunError, match="hidden"):
        MODELS.build({**MLP, "hidden": ["wide"]}, GREY_28)


# --- initialisers ----------------------------------------------------------------------


def test_xavier_uniform_zeroes_biases_and_changes_weights() -> None:
    torch.manual_seed(0)
    model = MODELS.build({**LENET, "batch_norm": True}, GREY_28)
    weighted = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    assert all(bool(m.bias.abs().sum() > 0) for m in weighted)  # torch's init is not zero
    before = {id(m): m.weight.detach().clone() for m in weighted}
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    norm_before = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in norms]

    INITS.build({"name": "xavier_uniform", "gain": 1.0}, model)

    for m in weighted:
        assert torch.count_nonzero(m.bias) == 0
        assert not torch.equal(m.weight, before[id(m)])
        # Xavier-uniform draws from [-b, b], b = sqrt(6 / (fan_in + fan_out)).
        receptive = m.weight[0, 0].numel()
        fan_in, fan_out = m.weight.shape[1] * receptive, m.weight.shape[0] * receptive
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert float(m.weight.detach().abs().max()) <= bound + 1e-6
    # Normalisation layers are left as built.
    assert len(norms) == 4
    for m, (w, b) in zip(norms, norm_before, strict=True):
        assert torch.equal(m.weight, w) and torch.equal(m.bias, b)


def test_xavier_uniform_gain_scales_the_bound() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 400))
    INITS.build({"name": "xavier_uniform", "gain": 0.01}, model)
    bound = 0.01 * (6 / 800) ** 0.5
    assert float(model[0].weight.detach().abs().max()) <= bound + 1e-9


def test_default_init_leaves_model_unchanged() -> None:
    torch.manual_seed(0)
    model = MODELS.build(MLP, GREY_28)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    INITS.build({"name": "default"}, model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# --- optimizers ------------------------------------------------------------------------


@pytest.mark.parametrize("opt_cfg", [SGD, ADAM], ids=["sgd", "adam"])
def test_optimizer_groups_exclude_biases_and_batch_norm_from_decay(opt_cfg: dict) -> None:
    model = MODELS.build({**LENET, "batch_norm": True}, GREY_28)
    optimizer = OPTIMIZERS.build(opt_cfg, model)
    groups = optimizer.param_groups
    assert len(groups) == 2
    decay = {id(p) for p in groups[0]["params"]}
    no_decay = {id(p) for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == pytest.approx(0.01)
    assert groups[1]["weight_decay"] == 0.0
    assert all(g["lr"] == pytest.approx(opt_cfg["lr"]) for g in groups)

    expected_decay, expected_no_decay = set(), set()
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            expected_decay.add(id(module.weight))
            expected_no_decay.add(id(module.bias))
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            expected_no_decay.update({id(module.weight), id(module.bias)})
    assert decay == expected_decay
    assert no_decay == expected_no_decay
    assert len(decay) + len(no_decay) == len(list(model.parameters()))


def test_param_groups_skip_frozen_parameters() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    groups = param_groups(model, 0.5)
    assert {id(p) for p in groups[0]["params"]} == {id(model[1].weight)}
    assert {id(p) for p in groups[1]["params"]} == {id(model[1].bias)}


def test_sgd_settings_reach_torch() -> None:
    model = nn.Linear(3, 2)
    cfg = {**SGD, "momentum": 0.9, "nesterov": True}
    optimizer = OPTIMIZERS.build(cfg, model)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.9)
    assert optimizer.param_groups[0]["nesterov"] is True


@pytest.mark.parametrize("opt_cfg", [SGD, ADAM], ids=["sgd", "adam"])
@pytest.mark.parametrize("lr", [-0.1, 0.0])
def test_non_positive_lr_is_rejected(opt_cfg: dict, lr: float) -> None:
    with pytest.raises(DlrunError, match="optimizer.lr"):
        OPTIMIZERS.build({**opt_cfg, "lr": lr}, nn.Linear(3, 2))


@pytest.mark.parametrize(
    ("opt_cfg", "match"),
    [
        ({**SGD, "weight_decay": -1.0}, "weight_decay"),
        ({**SGD, "nesterov": True}, "nesterov"),  # momentum 0
        ({**ADAM, "betas": [0.9]}, "betas"),
        ({**ADAM, "betas": [0.9, 1.0]}, "betas"),
    ],
)
def test_bad_optimizer_settings(opt_cfg: dict, match: str) -> None:
    with pytest.raises(DlrunError, match=match):
        OPTIMIZERS.build(opt_cfg, nn.Linear(3, 2))


# --- regularizers ----------------------------------------------------------------------


def test_l1_penalty_is_strength_times_sum_abs_weights() -> None:
    torch.manual_seed(0)
    model = MODELS.build({**MLP, "hidden": [16], "batch_norm": True}, GREY_28)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.BatchNorm1d):
                module.bias.fill_(5.0)  # large biases that must not count
    regularizer = REGULARIZERS.build({"name": "l1", "strength": 0.003})
    penalty = regularizer.penalty(model)

    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    expected = 0.003 * sum(float(w.detach().abs().sum()) for w in weights)
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    # Biases and BatchNorm's scale/shift (all 1-d) are left out.
    one_d = 0.003 * sum(float(p.detach().abs().sum()) for p in model.parameters() if p.ndim == 1)
    everything = 0.003 * sum(float(p.detach().abs().sum()) for p in model.parameters())
    assert one_d > 0.5
    assert everything - penalty.item() == pytest.approx(one_d, rel=1e-4)

    # The penalty is differentiable and its gradient is strength * sign(w).
    penalty.backward()
    first = weights[0]
    assert torch.allclose(first.grad, 0.003 * first.detach().sign())
    assert model[1].bias.grad is None


def test_l1_negative_strength_is_rejected() -> None:
    with pytest.raises(DlrunError, match="strength"):
        REGULARIZERS.build({"name": "l1", "strength": -1.0})
