"""Initialisers: built from their YAML, the right statistics, biases, recurrent layers, stats."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from torch import nn

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import INITS
from dlrun.errors import DlrunError
from dlrun.models.initializers import weight_stats

NAMES = [
    "default",
    "uniform",
    "normal",
    "zeros",
    "ones",
    "constant",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
]
FAN_IN, FAN_OUT = 300, 400  # weight 400x300


def compose_init(*overrides: str) -> dict:
    cfg = compose(*overrides, "dataset=digits")
    return OmegaConf.to_container(cfg.init, resolve=True)


@pytest.fixture(scope="module")
def yaml_cfgs() -> dict[str, dict]:
    return {name: compose_init(f"init={name}") for name in NAMES}


def big_linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(FAN_IN, FAN_OUT)


def init(cfg: dict, model: nn.Module, **overrides) -> nn.Module:
    INITS.build({**cfg, **overrides}, model)
    return model


def stats(tensor: torch.Tensor) -> tuple[float, float, float, float]:
    t = tensor.detach().double()
    return t.mean().item(), t.std().item(), t.min().item(), t.max().item()


@pytest.mark.parametrize("name", NAMES)
def test_every_yaml_composes_and_builds(name: str, yaml_cfgs: dict) -> None:
    assert yaml_cfgs[name]["name"] == name
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4))
    INITS.build(yaml_cfgs[name], model)
    assert model(torch.rand(1, 2, 4, 4)).shape == (1, 4)


def test_constant_families(yaml_cfgs: dict) -> None:
    assert torch.count_nonzero(init(yaml_cfgs["zeros"], big_linear()).weight) == 0
    assert torch.all(init(yaml_cfgs["ones"], big_linear()).weight == 1)
    layer = init(yaml_cfgs["constant"], big_linear(), value=-0.25)
    assert torch.all(layer.weight == -0.25)
    assert yaml_cfgs["constant"]["value"] == 0.1


def test_uniform_with_bounds(yaml_cfgs: dict) -> None:
    layer = init(yaml_cfgs["uniform"], big_linear(), a=-0.2, b=0.3)
    mean, std, low, high = stats(layer.weight)
    assert -0.2 <= low < -0.199 and 0.299 < high <= 0.3
    assert mean == pytest.approx(0.05, abs=0.003)
    assert std == pytest.approx(0.5 / math.sqrt(12), rel=0.02)


def test_uniform_default_bound_is_one_over_sqrt_fan_in(yaml_cfgs: dict) -> None:
    assert yaml_cfgs["uniform"]["a"] is None and yaml_cfgs["uniform"]["b"] is None
    bound = 1 / math.sqrt(FAN_IN)
    layer = init(yaml_cfgs["uniform"], big_linear())
    _, std, low, high = stats(layer.weight)
    assert -bound <= low < -0.99 * bound and 0.99 * bound < high <= bound
    assert std == pytest.approx(bound / math.sqrt(3), rel=0.02)
    # One bound given, the other from the layer.
    layer = init(yaml_cfgs["uniform"], big_linear(), a=0.0)
    _, _, low, high = stats(layer.weight)
    assert low >= 0.0 and 0.99 * bound < high <= bound


def test_normal_mean_and_std(yaml_cfgs: dict) -> None:
    assert (yaml_cfgs["normal"]["mean"], yaml_cfgs["normal"]["std"]) == (0.0, 0.01)
    mean, std, _, _ = stats(init(yaml_cfgs["normal"], big_linear()).weight)
    assert mean == pytest.approx(0.0, abs=1e-4)
    assert std == pytest.approx(0.01, rel=0.02)
    mean, std, _, _ = stats(init(yaml_cfgs["normal"], big_linear(), mean=0.5, std=0.2).weight)
    assert mean == pytest.approx(0.5, abs=0.003)
    assert std == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_xavier(gain: float, yaml_cfgs: dict) -> None:
    bound = gain * math.sqrt(6 / (FAN_IN + FAN_OUT))
    _, std, low, high = stats(init(yaml_cfgs["xavier_uniform"], big_linear(), gain=gain).weight)
    assert -bound <= low and high <= bound and high > 0.99 * bound
    assert std == pytest.approx(bound / math.sqrt(3), rel=0.02)
    mean, std, _, _ = stats(init(yaml_cfgs["xavier_normal"], big_linear(), gain=gain).weight)
    assert mean == pytest.approx(0.0, abs=0.003 * gain)
    assert std == pytest.approx(gain * math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)


@pytest.mark.parametrize(
    ("nonlinearity", "a", "mode", "gain", "fan"),
    [
        ("relu", 0.0, "fan_in", math.sqrt(2), FAN_IN),
        ("relu", 0.0, "fan_out", math.sqrt(2), FAN_OUT),
        ("leaky_relu", 0.2, "fan_in", math.sqrt(2 / (1 + 0.2**2)), FAN_IN),
        ("tanh", 0.0, "fan_in", 5 / 3, FAN_IN),
        ("linear", 0.0, "fan_out", 1.0, FAN_OUT),
        ("sigmoid", 0.0, "fan_in", 1.0, FAN_IN),
    ],
)
def test_kaiming(nonlinearity, a, mode, gain, fan, yaml_cfgs: dict) -> None:
    knobs = {"nonlinearity": nonlinearity, "a": a, "mode": mode}
    mean, std, _, _ = stats(init(yaml_cfgs["kaiming_normal"], big_linear(), **knobs).weight)
    assert mean == pytest.approx(0.0, abs=0.003 * gain)
    assert std == pytest.approx(gain / math.sqrt(fan), rel=0.02)
    _, std, low, high = stats(init(yaml_cfgs["kaiming_uniform"], big_linear(), **knobs).weight)
    bound = gain * math.sqrt(3 / fan)
    assert -bound <= low and high <= bound and high > 0.99 * bound
    assert std == pytest.approx(gain / math.sqrt(fan), rel=0.02)


def test_kaiming_on_conv_uses_the_receptive_field(yaml_cfgs: dict) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 64, kernel_size=5)  # fan_in 16 * 25 = 400
    init(yaml_cfgs["kaiming_normal"], conv)
    assert stats(conv.weight)[1] == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize("name", [n for n in NAMES if n != "default"])
def test_biases_zero_by_default_and_kept_with_keep(name: str, yaml_cfgs: dict) -> None:
    assert yaml_cfgs[name]["bias"] == "zeros"
    layer = init(yaml_cfgs[name], big_linear())
    assert torch.count_nonzero(layer.bias) == 0
    layer = big_linear()
    built = layer.bias.detach().clone()
    assert torch.count_nonzero(built) > 0
    init(yaml_cfgs[name], layer, bias="keep")
    assert torch.equal(layer.bias, built)


def test_bias_same_uses_the_weights_method(yaml_cfgs: dict) -> None:
    layer = init(yaml_cfgs["normal"], nn.Linear(10, 20000), bias="same", mean=1.0, std=0.1)
    mean, std, _, _ = stats(layer.bias)
    assert mean == pytest.approx(1.0, abs=0.005)
    assert std == pytest.approx(0.1, rel=0.03)
    layer = init(yaml_cfgs["constant"], nn.Linear(10, 20), bias="same", value=0.7)
    assert torch.all(layer.bias == 0.7)
    layer = init(yaml_cfgs["uniform"], nn.Linear(100, 5000), bias="same")
    assert float(layer.bias.detach().abs().max()) <= 0.1  # 1/sqrt(fan_in of the layer)
    assert float(layer.bias.detach().abs().max()) > 0.099


@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "kaiming_normal"])
def test_bias_same_is_refused_for_fan_based_methods(name: str, yaml_cfgs: dict) -> None:
    with pytest.raises(DlrunError, match="init.bias=same"):
        init(yaml_cfgs[name], big_linear(), bias="same")


def test_default_leaves_everything_and_can_zero_biases(yaml_cfgs: dict) -> None:
    assert yaml_cfgs["default"]["bias"] == "keep"
    model = nn.Sequential(nn.Linear(5, 4), nn.LSTM(4, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init(yaml_cfgs["default"], model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    init(yaml_cfgs["default"], model, bias="zeros")
    for key, value in model.state_dict().items():
        if "bias" in key:
            assert torch.count_nonzero(value) == 0
        else:
            assert torch.equal(before[key], value)


def test_norm_layers_left_as_built(yaml_cfgs: dict) -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.LayerNorm(6))
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[2].bias.fill_(3.0)
    init(yaml_cfgs["ones"], model)
    assert torch.all(model[0].weight == 1)
    assert torch.all(model[1].weight == 2.0) and torch.all(model[2].bias == 3.0)
    assert torch.all(model[1].bias == 0) and torch.all(model[2].weight == 1)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_weights_are_initialised(cls: type, yaml_cfgs: dict) -> None:
    torch.manual_seed(0)
    rnn = cls(6, 5, num_layers=2, bidirectional=True)
    init(yaml_cfgs["constant"], rnn, value=0.3)
    names = [name for name, _ in rnn.named_parameters()]
    assert "weight_hh_l1_reverse" in names and "bias_ih_l0" in names
    for name, param in rnn.named_parameters():
        expected = 0.3 if name.startswith("weight") else 0.0
        assert torch.all(param == expected), name
    # Xavier on nn.LSTM's stacked gate matrix weight_ih_l0 (4*5 x 6).
    lstm = nn.LSTM(6, 5)
    init(yaml_cfgs["xavier_uniform"], lstm)
    bound = math.sqrt(6 / (6 + 20))
    assert float(lstm.weight_ih_l0.detach().abs().max()) <= bound
    assert float(lstm.weight_ih_l0.detach().abs().max()) > 0.8 * bound


def test_lstm_inside_a_model_and_cells(yaml_cfgs: dict) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(8, 16, batch_first=True)
            self.cell = nn.GRUCell(4, 4)
            self.head = nn.Linear(16, 8)

    model = init(yaml_cfgs["normal"], Net(), std=0.5)
    for name, param in model.named_parameters():
        if "weight" in name:
            assert 0.3 < float(param.detach().std()) < 0.7, name
        else:
            assert torch.count_nonzero(param) == 0, name


class HandWrittenLSTM(nn.Module):
    """Gate matrices in the tutorial's (inputs, outputs) layout, listed for initialisers."""

    def __init__(self, transposed: bool) -> None:
        super().__init__()
        self.W_xi = nn.Parameter(torch.zeros(40, 400))
        self.W_hi = nn.Parameter(torch.zeros(400, 400))
        self.b_i = nn.Parameter(torch.ones(400))
        self.other = nn.Parameter(torch.ones(3))  # listed nowhere: left alone
        self.init_weights_transposed = transposed

    @property
    def init_weights(self) -> list[nn.Parameter]:
        return [self.W_xi, self.W_hi]

    @property
    def init_biases(self) -> list[nn.Parameter]:
        return [self.b_i]


def test_hand_written_module_lists_its_weights(yaml_cfgs: dict) -> None:
    torch.manual_seed(0)
    module = init(yaml_cfgs["normal"], HandWrittenLSTM(False), std=0.1)
    assert stats(module.W_xi)[1] == pytest.approx(0.1, rel=0.05)
    assert stats(module.W_hi)[1] == pytest.approx(0.1, rel=0.05)
    assert torch.count_nonzero(module.b_i) == 0
    assert torch.all(module.other == 1)
    module = init(yaml_cfgs["ones"], HandWrittenLSTM(False), bias="keep")
    assert torch.all(module.b_i == 1) and torch.all(module.W_xi == 1)


def test_hand_written_module_in_out_layout_uses_its_inputs_as_fan_in(yaml_cfgs: dict) -> None:
    torch.manual_seed(0)
    module = init(yaml_cfgs["kaiming_normal"], HandWrittenLSTM(True))
    assert stats(module.W_xi)[1] == pytest.approx(math.sqrt(2 / 40), rel=0.03)
    assert module.W_xi.shape == (40, 400) and module.W_xi.is_leaf
    plain = init(yaml_cfgs["kaiming_normal"], HandWrittenLSTM(False))
    assert stats(plain.W_xi)[1] == pytest.approx(math.sqrt(2 / 400), rel=0.03)


def test_weight_stats_rows_match_the_layers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    rows = weight_stats(model)
    assert [(r["layer"], r["type"], r["param"]) for r in rows] == [
        ("0", "Linear", "weight"),
        ("0", "Linear", "bias"),
        ("1", "BatchNorm1d", "weight"),
        ("1", "BatchNorm1d", "bias"),
        ("3", "Linear", "weight"),
        ("3", "Linear", "bias"),
    ]
    assert [r["shape"] for r in rows] == ["3x4", "3", "3", "3", "2x3", "2"]
    assert [r["numel"] for r in rows] == [12, 3, 3, 3, 6, 2]
    w = model[0].weight.detach().double()
    first = rows[0]
    assert first["mean"] == pytest.approx(w.mean().item())
    assert first["std"] == pytest.approx(w.std(correction=0).item())
    assert first["min"] == pytest.approx(w.min().item())
    assert first["max"] == pytest.approx(w.max().item())
    assert first["norm"] == pytest.approx(w.norm().item())
    assert rows[2]["std"] == 0.0 and rows[2]["mean"] == 1.0  # BatchNorm scale starts at 1
    assert all(isinstance(v, float) for r in rows for k, v in r.items() if k in ("mean", "std"))


def test_weight_stats_of_an_lstm_and_after_an_init(yaml_cfgs: dict) -> None:
    model = nn.Sequential(nn.LSTM(3, 2, num_layers=2))
    rows = weight_stats(model)
    assert [r["param"] for r in rows] == [
        name.split(".")[-1] for name, _ in model.named_parameters()
    ]
    assert {r["layer"] for r in rows} == {"0"}
    init(yaml_cfgs["zeros"], model)
    assert all(r["norm"] == 0.0 and r["std"] == 0.0 for r in weight_stats(model))


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("normal", "std", -0.1),
        ("xavier_uniform", "gain", 0.0),
        ("xavier_normal", "gain", -1.0),
        ("kaiming_normal", "a", -0.1),
        ("uniform", "a", 0.5),  # with b 0.1 below
    ],
)
def test_bad_values_name_key_and_value(name: str, key: str, value, yaml_cfgs: dict) -> None:
    extra = {"b": 0.1} if name == "uniform" else {}
    with pytest.raises(DlrunError) as info:
        init(yaml_cfgs[name], big_linear(), **{key: value}, **extra)
    assert f"init.{key}={value}" in str(info.value)


def test_uniform_one_bound_beyond_the_default_is_refused(yaml_cfgs: dict) -> None:
    with pytest.raises(DlrunError, match="init.a=0.5"):
        init(yaml_cfgs["uniform"], big_linear(), a=0.5)  # b = 1/sqrt(300) < 0.5


@pytest.mark.parametrize(
    ("key", "value"), [("nonlinearity", "relux"), ("mode", "fan_avg"), ("bias", "zero")]
)
def test_invalid_choices_name_key_and_value(key: str, value: str, yaml_cfgs: dict) -> None:
    with pytest.raises(DlrunError) as info:
        init(yaml_cfgs["kaiming_uniform"], big_linear(), **{key: value})
    assert key in str(info.value) and value in str(info.value)
    with pytest.raises(ConfigCompositionException):
        compose_init("init=kaiming_uniform", f"init.{key}={value}")
