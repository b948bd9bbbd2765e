"""Linear models, the deep MLP and the character-level RNN language model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torch import nn

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import MODELS
from dlrun.data.dataset import DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.char_rnn import CharRNN, ScratchLSTM

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"

GREY_28 = DatasetMeta(task="classification", input_shape=(1, 28, 28), num_classes=10)
TABULAR = DatasetMeta(task="regression", input_shape=(200,), num_outputs=1)
TWO_TARGETS = DatasetMeta(task="regression", input_shape=(5,), num_outputs=2)
SCALAR = DatasetMeta(task="regression", input_shape=(1,), num_outputs=1)
VOCAB = tuple("abcdefgh")
TEXT = DatasetMeta(task="language_model", input_shape=(35,), vocab=VOCAB)

SOFTMAX = {"name": "softmax_regression"}
LINREG = {"name": "linear_regression", "bias": True}
POLY = {"name": "poly_regression", "degree": 3}
DEEP = {"name": "deep_mlp", "depth": 5, "width": 32, "activation": "sigmoid", "batch_norm": False}
RNN = {"name": "char_rnn", "cell": "gru", "hidden_size": 16, "num_layers": 1, "embedding": None}
CELLS = ["rnn", "gru", "lstm", "lstm_scratch"]


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is as fast, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def linears(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


# --- the YAML files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meta"),
    [
        ("softmax_regression", GREY_28),
        ("linear_regression", TABULAR),
        ("poly_regression", SCALAR),
        ("deep_mlp", GREY_28),
        ("char_rnn", TEXT),
    ],
)
def test_yaml_defaults_build_the_model(name: str, meta: DatasetMeta) -> None:
    raw = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert raw.pop("defaults") == [f"/schema/model/{name}@_here_", "_self_"]
    assert raw["name"] == name
    model = MODELS.build(OmegaConf.create(raw), meta)
    assert isinstance(model, nn.Module)


def test_yaml_knob_values() -> None:
    # The values the experiments rely on.
    assert yaml.safe_load((CONF / "poly_regression.yaml").read_text())["degree"] == 3
    rnn = yaml.safe_load((CONF / "char_rnn.yaml").read_text())
    assert (rnn["cell"], rnn["hidden_size"], rnn["embedding"]) == ("lstm", 256, None)


# --- wrong task ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "meta", "needs", "instead"),
    [
        (SOFTMAX, TABULAR, "classification", "model=linear_regression"),
        (SOFTMAX, TEXT, "classification", "model=char_rnn"),
        (LINREG, GREY_28, "regression", "model=softmax_regression"),
        (LINREG, TEXT, "regression", "model=char_rnn"),
        (POLY, GREY_28, "regression", "model=softmax_regression"),
        (DEEP, TEXT, "classification or regression", "model=char_rnn"),
        (RNN, GREY_28, "language_model", "model=softmax_regression"),
        (RNN, TABULAR, "language_model", "model=linear_regression"),
    ],
)
def test_wrong_task_is_refused(cfg: dict, meta: DatasetMeta, needs: str, instead: str) -> None:
    with pytest.raises(DlrunError) as info:
        MODELS.build(cfg, meta)
    message = str(info.value)
    assert f"model={cfg['name']} needs a {needs} data set" in message
    assert f"task is {meta.task}" in message
    assert instead in message


# --- softmax and linear regression -----------------------------------------------------


def test_softmax_regression_is_one_linear_layer() -> None:
    model = MODELS.build(SOFTMAX, GREY_28)
    assert linears(model) == [(784, 10)]
    assert model(torch.rand(6, 1, 28, 28)).shape == (6, 10)
    assert len(list(model.parameters())) == 2  # W and b, nothing else


def test_linear_regression_shapes_and_bias() -> None:
    model = MODELS.build(LINREG, TABULAR)
    assert linears(model) == [(200, 1)]
    assert model(torch.randn(4, 200)).shape == (4, 1)

    model = MODELS.build(LINREG, TWO_TARGETS)
    assert linears(model) == [(5, 2)]
    assert model(torch.randn(3, 5)).shape == (3, 2)
    assert model[1].bias is not None

    no_bias = MODELS.build({**LINREG, "bias": False}, TWO_TARGETS)
    assert no_bias[1].bias is None
    assert torch.equal(no_bias(torch.zeros(2, 5)), torch.zeros(2, 2))


def test_linear_regression_computes_xw_plus_b() -> None:
    model = MODELS.build(LINREG, TWO_TARGETS)
    x = torch.randn(7, 5)
    expected = x @ model[1].weight.T + model[1].bias
    assert torch.allclose(model(x), expected)


# --- polynomial regression -------------------------------------------------------------


@pytest.mark.parametrize("power", [0, 1, 2, 3, 5])
def test_poly_features_are_x_to_the_i_over_i_factorial(power: int) -> None:
    model = MODELS.build({**POLY, "degree": 5}, SCALAR)
    x = torch.tensor([[-2.0], [-0.5], [0.0], [0.3], [1.0], [3.0]])
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.weight[0, power] = 1.0  # pick one feature
    expected = x**power / math.factorial(power)
    assert torch.allclose(model(x), expected, rtol=1e-6, atol=1e-7)


def test_poly_feature_matrix() -> None:
    model = MODELS.build({**POLY, "degree": 4}, SCALAR)
    x = torch.tensor([[2.0], [-1.0]])
    assert torch.allclose(
        model.features(x),
        torch.tensor([[1.0, 2.0, 2.0, 8 / 6, 16 / 24], [1.0, -1.0, 0.5, -1 / 6, 1 / 24]]),
    )


@pytest.mark.parametrize("degree", [0, 1, 3, 19])
def test_poly_degree_is_honoured(degree: int) -> None:
    model = MODELS.build({**POLY, "degree": degree}, SCALAR)
    # One weight per feature x^0..x^degree and no separate bias: x^0 is the bias term.
    assert linears(model) == [(degree + 1, 1)]
    assert model.linear.bias is None
    assert sum(p.numel() for p in model.parameters()) == degree + 1
    assert model(torch.randn(8, 1)).shape == (8, 1)


def test_poly_fits_a_cubic_exactly() -> None:
    # Least squares over the features recovers y = 5 + 1.2x - 3.4x^2/2! + 5.6x^3/3!.
    torch.manual_seed(0)
    model = MODELS.build(POLY, SCALAR)
    x = torch.randn(50, 1)
    true_w = torch.tensor([5.0, 1.2, -3.4, 5.6])
    y = model.features(x) @ true_w
    solution = torch.linalg.lstsq(model.features(x), y.unsqueeze(1)).solution
    with torch.no_grad():
        model.linear.weight.copy_(solution.T)
    assert torch.allclose(model.linear.weight[0], true_w, atol=1e-4)
    assert torch.allclose(model(x).squeeze(1), y, atol=1e-4)


def test_poly_needs_one_scalar_input() -> None:
    with pytest.raises(DlrunError, match=r"input_shape \(1,\).*\(200,\).*model=linear_regression"):
        MODELS.build(POLY, TABULAR)


@pytest.mark.parametrize("degree", [-1, 31])
def test_poly_degree_out_of_range(degree: int) -> None:
    with pytest.raises(DlrunError, match=f"model.degree={degree} .*0 <= degree <= 30"):
        MODELS.build({**POLY, "degree": degree}, SCALAR)


# --- deep MLP --------------------------------------------------------------------------


def test_deep_mlp_layers_are_named_and_sized() -> None:
    model = MODELS.build(DEEP, GREY_28)
    names = [name for name, _ in model.named_children()]
    assert names == [
        "flatten",
        *[part for i in range(1, 6) for part in (f"hidden{i}", f"act{i}")],
        "output",
    ]
    hidden = [getattr(model, f"hidden{i}") for i in range(1, 6)]
    assert all(isinstance(layer, nn.Linear) for layer in hidden)
    assert linears(model) == [(784, 32)] + [(32, 32)] * 4 + [(32, 10)]
    acts = [type(m) for m in model.modules() if not isinstance(m, nn.Sequential | nn.Linear)]
    assert acts == [nn.Flatten] + [nn.Sigmoid] * 5
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    weights = [name for name, p in model.named_parameters() if p.ndim == 2]
    assert weights == [f"hidden{i}.weight" for i in range(1, 6)] + ["output.weight"]


@pytest.mark.parametrize(
    ("activation", "layer"),
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("identity", nn.Identity), ("gelu", nn.GELU)],
)
def test_deep_mlp_activation(activation: str, layer: type) -> None:
    model = MODELS.build({**DEEP, "depth": 3, "activation": activation}, TABULAR)
    assert [type(m) for m in model if not isinstance(m, nn.Linear | nn.Flatten)] == [layer] * 3
    assert not any(isinstance(m, nn.Sigmoid) for m in model.modules())


def test_deep_mlp_regression_output_and_batch_norm() -> None:
    model = MODELS.build({**DEEP, "depth": 4, "width": 16, "batch_norm": True}, TWO_TARGETS)
    assert linears(model) == [(5, 16)] + [(16, 16)] * 3 + [(16, 2)]
    norms = [(name, m.num_features) for name, m in model.named_children() if "norm" in name]
    assert norms == [(f"norm{i}", 16) for i in range(1, 5)]
    # Linear, BatchNorm, activation in that order.
    assert [name for name, _ in model.named_children()][1:4] == ["hidden1", "norm1", "act1"]
    assert model(torch.randn(6, 5)).shape == (6, 2)


def test_deep_sigmoid_stack_vanishes_relu_less_so() -> None:
    # The study this model is for: near the input, a 20-layer sigmoid stack gets almost no
    # gradient compared with its output layer; ReLU keeps far more of it.
    def ratio(activation: str) -> float:
        torch.manual_seed(0)
        model = MODELS.build({**DEEP, "depth": 20, "activation": activation}, TABULAR)
        model(torch.randn(64, 200)).pow(2).mean().backward()
        return float(model.hidden1.weight.grad.norm() / model.output.weight.grad.norm())

    sigmoid, relu = ratio("sigmoid"), ratio("relu")
    assert sigmoid < 1e-6
    assert relu > 1000 * sigmoid


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"depth": 0}, "model.depth=0 .*>= 1"),
        ({"width": 0}, "model.width=0 .*>= 1"),
        ({"activation": "relux"}, "activation"),
        ({"depth": "deep"}, "depth"),
    ],
)
def test_deep_mlp_bad_knobs(override: dict, match: str) -> None:
    with pytest.raises(DlrunError, match=match):
        MODELS.build({**DEEP, **override}, GREY_28)


# --- char RNN: shapes, state, generation ------------------------------------------------


def ids(n: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, len(VOCAB), (n, t), generator=torch.Generator().manual_seed(seed))


def build_rnn(cell: str, **knobs: object) -> CharRNN:
    torch.manual_seed(0)
    return MODELS.build({**RNN, "cell": cell, **knobs}, TEXT)


@pytest.mark.parametrize("embedding", [None, 5])
@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_logits_and_state_shapes(cell: str, embedding: int | None) -> None:
    model = build_rnn(cell, embedding=embedding)
    assert model.output.out_features == len(VOCAB)
    logits, state = model(ids(4, 7))
    assert logits.shape == (4, 7, len(VOCAB))
    if cell in ("lstm", "lstm_scratch"):
        h, c = state
        assert h.shape == c.shape == (1, 4, 16)
    else:
        assert isinstance(state, torch.Tensor)
        assert state.shape == (1, 4, 16)
    if embedding is None:
        assert model.embedding is None  # one-hot inputs of size V
    else:
        assert model.embedding.embedding_dim == 5


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_char_rnn_stacked_layers(cell: str) -> None:
    model = build_rnn(cell, num_layers=3)
    assert model.rnn.num_layers == 3
    logits, state = model(ids(2, 5))
    assert logits.shape == (2, 5, len(VOCAB))
    first = state[0] if isinstance(state, tuple) else state
    assert first.shape == (3, 2, 16)


@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_carried_state_changes_the_output(cell: str) -> None:
    model = build_rnn(cell)
    x = ids(3, 6)
    _, state = model(ids(3, 6, seed=1))
    fresh, _ = model(x)
    zeros, _ = model(x, None)
    carried, _ = model(x, state)
    assert torch.equal(fresh, zeros)
    assert not torch.allclose(fresh, carried)
    # Running two halves with the state carried equals running the whole sequence.
    whole, _ = model(x)
    first, mid = model(x[:, :3])
    second, _ = model(x[:, 3:], mid)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_detach_state(cell: str) -> None:
    model = build_rnn(cell)
    _, state = model(ids(2, 4))
    parts = state if isinstance(state, tuple) else (state,)
    assert all(p.grad_fn is not None for p in parts)
    detached = model.detach_state(state)
    assert type(detached) is type(state)
    after_parts = detached if isinstance(detached, tuple) else (detached,)
    for before, after in zip(parts, after_parts, strict=True):
        assert after.grad_fn is None and not after.requires_grad
        assert torch.equal(before, after)
    assert model.detach_state(None) is None
    # The detached state carries on without reaching back into the old graph.
    logits, _ = model(ids(2, 4, seed=3), detached)
    logits.sum().backward()


@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_generate(cell: str) -> None:
    model = build_rnn(cell)
    model.train()
    out = model.generate([0, 1, 2], 20)
    assert len(out) == 20
    assert all(isinstance(i, int) and 0 <= i < len(VOCAB) for i in out)
    assert model.generate([0, 1, 2], 20) == out  # greedy: deterministic
    assert model.training  # the mode is left as it was
    assert model.generate([4], 0) == []

    # The same as feeding the prefix, then each argmax, through forward by hand.
    with torch.no_grad():
        logits, state = model(torch.tensor([[0, 1, 2]]))
        expected = []
        for _ in range(20):
            expected.append(int(logits[0, -1].argmax()))
            logits, state = model(torch.tensor([[expected[-1]]]), state)
    assert out == expected


def test_char_rnn_generate_bad_arguments() -> None:
    model = build_rnn("gru")
    with pytest.raises(DlrunError, match="prefix"):
        model.generate([], 5)
    with pytest.raises(DlrunError, match=r"\[8\].*\[0, 8\)"):
        model.generate([1, 8], 5)
    with pytest.raises(DlrunError, match="num_chars=-1"):
        model.generate([1], -1)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"hidden_size": 0}, "model.hidden_size=0 .*>= 1"),
        ({"num_layers": 0}, "model.num_layers=0 .*>= 1"),
        ({"embedding": 0}, "model.embedding=0 .*null.*>= 1"),
        ({"cell": "lstm_scratch", "num_layers": 2}, "model.num_layers=2 .*lstm_scratch.*1 layer"),
        ({"cell": "transformer"}, "cell"),
    ],
)
def test_char_rnn_bad_knobs(override: dict, match: str) -> None:
    with pytest.raises(DlrunError, match=match):
        MODELS.build({**RNN, **override}, TEXT)


def test_char_rnn_needs_a_vocabulary() -> None:
    meta = DatasetMeta(task="language_model", input_shape=(35,))
    with pytest.raises(DlrunError, match="vocabulary"):
        MODELS.build(RNN, meta)


# --- the hand-written LSTM -------------------------------------------------------------


def test_lstm_scratch_init_like_the_tutorial() -> None:
    torch.manual_seed(0)
    model = MODELS.build({**RNN, "cell": "lstm_scratch", "hidden_size": 256}, TEXT)
    lstm = model.rnn
    assert isinstance(lstm, ScratchLSTM)
    weights = lstm.init_weights
    assert len(weights) == 8
    assert all(isinstance(w, nn.Parameter) and w.ndim == 2 for w in weights)
    assert [tuple(w.shape) for w in weights[::2]] == [(len(VOCAB), 256)] * 4  # W_x*
    assert [tuple(w.shape) for w in weights[1::2]] == [(256, 256)] * 4  # W_h*
    own = {id(p) for p in model.parameters()}
    assert all(id(w) in own for w in weights)
    every = torch.cat([w.detach().flatten() for w in weights])
    assert float(every.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(every.std()) == pytest.approx(0.01, rel=0.05)
    assert all(torch.count_nonzero(b) == 0 for b in lstm.init_biases)
    # All of them, and nothing else, are the LSTM's parameters.
    assert {id(p) for p in lstm.parameters()} == {id(p) for p in weights + lstm.init_biases}


def copy_into_torch_lstm(scratch: ScratchLSTM) -> nn.LSTM:
    """An nn.LSTM with the same weights: torch stacks gates i, f, g (candidate), o."""
    lstm = nn.LSTM(scratch.input_size, scratch.hidden_size, batch_first=True)
    s = scratch
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.cat([s.W_xi, s.W_xf, s.W_xc, s.W_xo], dim=1).T)
        lstm.weight_hh_l0.copy_(torch.cat([s.W_hi, s.W_hf, s.W_hc, s.W_ho], dim=1).T)
        lstm.bias_ih_l0.copy_(torch.cat([s.b_i, s.b_f, s.b_c, s.b_o]))
        lstm.bias_hh_l0.zero_()
    return lstm


def test_lstm_scratch_matches_torch_lstm() -> None:
    torch.manual_seed(0)
    scratch = ScratchLSTM(6, 9)
    with torch.no_grad():  # weights large enough for every gate to matter
        for p in scratch.parameters():
            p.normal_(0.0, 0.5)
    lstm = copy_into_torch_lstm(scratch)
    x = torch.randn(4, 11, 6)

    out_s, (h_s, c_s) = scratch(x)
    out_t, (h_t, c_t) = lstm(x)
    assert out_s.shape == out_t.shape == (4, 11, 9)
    assert torch.allclose(out_s, out_t, atol=1e-5)
    assert torch.allclose(h_s, h_t, atol=1e-5)
    assert torch.allclose(c_s, c_t, atol=1e-5)

    state = (torch.randn(1, 4, 9), torch.randn(1, 4, 9))
    out_s, (h_s, c_s) = scratch(x, state)
    out_t, (h_t, c_t) = lstm(x, state)
    assert torch.allclose(out_s, out_t, atol=1e-5)
    assert torch.allclose(c_s, c_t, atol=1e-5)

    # The gradients agree too.
    out_s.sum().backward()
    out_t.sum().backward()
    grad_xi = lstm.weight_ih_l0.grad[:9].T
    assert torch.allclose(scratch.W_xi.grad, grad_xi, atol=1e-4)


# --- a tiny training run ---------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm_scratch"])
def test_char_rnn_learns_a_repeated_corpus(cell: str) -> None:
    torch.manual_seed(0)
    model = MODELS.build({**RNN, "cell": cell, "hidden_size": 32}, TEXT)
    corpus = torch.tensor([i % len(VOCAB) for i in range(4 * 200 + 1)])  # "abcdefghabc..."
    # Consecutive sampling: 4 streams, windows of 10, the state carried across batches.
    inputs, targets = corpus[:-1].reshape(4, -1), corpus[1:].reshape(4, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    state, losses = None, []
    for step in range(300):
        start = (step * 10) % inputs.shape[1]
        x, y = inputs[:, start : start + 10], targets[:, start : start + 10]
        if start == 0:
            state = None
        logits, state = model(x, state)
        loss = loss_fn(logits.reshape(-1, len(VOCAB)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state = model.detach_state(state)
        losses.append(loss.item())
    perplexity = math.exp(sum(losses[-20:]) / 20)
    assert math.exp(losses[0]) > len(VOCAB) / 2  # starts near chance
    assert perplexity < 1.1
    assert model.generate([0, 1, 2], 10) == [3, 4, 5, 6, 7, 0, 1, 2, 3, 4]
