"""Regularizers and normalisation behave as the tutorials define them."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.options.regularizers import EarlyStoppingConfig
from dlrun.config.registry import MODELS, OPTIMIZERS
from dlrun.data.dataset import DatasetMeta
from dlrun.errors import DlrunError
from dlrun.optim.regularizers import build_regularizers
from dlrun.training.early_stopping import EarlyStopping
from dlrun.training.state import TrainState

META = DatasetMeta(task="classification", input_shape=(1, 28, 28), num_classes=10)


def regularizers(**entries):
    return build_regularizers(OmegaConf.create({k: {"name": k, **v} for k, v in entries.items()}))


def sgd(model, lr=0.1):
    cfg = {"name": "sgd", "lr": lr, "momentum": 0.0, "dampening": 0.0}
    return OPTIMIZERS.build({**cfg, "weight_decay": 0.0, "nesterov": False}, model)


def test_l2_decays_weights_and_never_biases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    optimizer = sgd(model, lr=0.1)
    (l2,) = regularizers(l2={"strength": 3.0})
    l2.configure_optimizer(optimizer)
    decays = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        assert decays[id(param)] == (3.0 if param.ndim >= 2 else 0.0), name

    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer.zero_grad()
    for param in model.parameters():  # a zero loss gradient: only the penalty acts
        param.grad = torch.zeros_like(param)
    optimizer.step()
    for name, param in model.named_parameters():
        expected = before[name] * (1 - 0.1 * 3.0) if param.ndim >= 2 else before[name]
        torch.testing.assert_close(param.detach(), expected, msg=name)


def test_l2_refuses_a_second_weight_decay():
    model = nn.Linear(3, 2)
    cfg = {"name": "sgd", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False}
    optimizer = OPTIMIZERS.build({**cfg, "weight_decay": 0.01}, model)
    (l2,) = regularizers(l2={"strength": 3.0})
    with pytest.raises(DlrunError, match="weight_decay"):
        l2.configure_optimizer(optimizer)


def test_l1_adds_exactly_lambda_times_sum_of_absolute_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
    (l1,) = regularizers(l1={"strength": 0.01})
    penalty = l1.penalty(model)
    weights = [model[0].weight, model[2].weight]
    expected = 0.01 * sum(w.abs().sum() for w in weights)
    torch.testing.assert_close(penalty, expected)
    penalty.backward()
    for w in weights:
        torch.testing.assert_close(w.grad, 0.01 * torch.sign(w.detach()))
    assert model[0].bias.grad is None and model[2].bias.grad is None


def test_dropout_regularizer_sets_the_model_rates():
    (dropout,) = regularizers(dropout={"rates": [0.2, 0.5]})
    model_cfg = OmegaConf.create(
        {"name": "mlp", "hidden": [8, 8], "activation": "relu", "dropout": [0.0]}
    )
    model_cfg.batch_norm = False
    dropout.configure_model(model_cfg)
    model = MODELS.build(model_cfg, META)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5]
    with pytest.raises(DlrunError, match="no `dropout` setting"):
        dropout.configure_model(OmegaConf.create({"name": "lenet"}))


def test_dropout_is_off_in_eval_and_scales_kept_units():
    model = MODELS.build(
        {"name": "mlp", "hidden": [8], "activation": "relu", "dropout": [0.8], "batch_norm": False},
        META,
    )
    (dropout,) = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    x = torch.ones(10_000)
    dropout.train()
    out = dropout(x)
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 5.0))  # 1 / (1 - 0.8)
    assert 0.15 < len(kept) / len(x) < 0.25
    model.eval()
    assert torch.equal(dropout(x), x)


def test_batch_norm_uses_running_statistics_in_eval():
    torch.manual_seed(0)
    model = MODELS.build(
        {"name": "lenet", "activation": "relu", "pool": "max", "batch_norm": True}, META
    )
    norm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert norm.momentum == 0.1 and norm.eps == 1e-5 and norm.affine
    model.train()
    model(torch.rand(32, 1, 28, 28) * 3 + 1)  # updates the running mean and variance
    assert not torch.equal(norm.running_mean, torch.zeros(6))
    model.eval()
    one = torch.rand(1, 1, 28, 28)
    alone = model(one)
    in_batch = model(torch.cat([one, torch.rand(7, 1, 28, 28) * 10]))[:1]
    torch.testing.assert_close(alone, in_batch)  # no dependence on the rest of the batch


def early_stopping(patience=2, min_delta=0.0, mode="min"):
    cfg = EarlyStoppingConfig(
        name="early_stopping",
        monitor="test_loss",
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        restore_best=True,
    )
    return EarlyStopping(cfg)


def after_epoch(stopper: EarlyStopping, model: nn.Module, epoch: int, metrics: dict):
    """What the run's epoch end asks after an epoch: a reason to stop, or None."""
    state = TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.Generator())
    state.epoch = epoch
    return stopper.after_epoch(state, metrics)


def test_early_stopping_stops_at_the_expected_epoch_and_restores_the_best_weights():
    model = nn.Linear(2, 1)
    stopper = early_stopping(patience=2)
    losses = [1.0, 0.8, 0.5, 0.6, 0.55, 0.4]  # best at epoch 3; no gain at 4 and 5
    weights_at = {}
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)  # stands for training
        weights_at[epoch] = model.weight.detach().clone()
        reason = after_epoch(stopper, model, epoch, {"epoch": epoch, "test_loss": loss})
        if reason:
            break
    assert epoch == 5
    assert "best 0.5 at epoch 3" in reason
    assert torch.equal(model.weight, weights_at[3])


def test_early_stopping_min_delta_and_max_mode():
    model = nn.Linear(2, 1)
    stopper = early_stopping(patience=1, min_delta=0.05, mode="max")
    metrics = [0.50, 0.53]  # +0.03 is below min_delta: no improvement
    reasons = [
        after_epoch(stopper, model, e, {"test_loss": v}) for e, v in enumerate(metrics, start=1)
    ]
    assert reasons[0] is None and reasons[1] is not None


def test_early_stopping_state_survives_a_checkpoint():
    model = nn.Linear(2, 1)
    first = early_stopping(patience=3)
    after_epoch(first, model, 1, {"test_loss": 1.0})
    after_epoch(first, model, 2, {"test_loss": 2.0})
    second = early_stopping(patience=3)
    second.load_state_dict(first.state_dict())
    assert after_epoch(second, model, 3, {"test_loss": 2.0}) is None
    assert after_epoch(second, model, 4, {"test_loss": 2.0}) is not None  # 3 epochs w/o gain


def test_grad_clip_caps_the_global_norm():
    model = nn.Linear(10, 10)
    (clip,) = regularizers(grad_clip={"theta": 0.5})
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    clip.before_step(model)
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    torch.testing.assert_close(norm, torch.tensor(0.5))


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        ({"l1": {"strength": -1.0}}, "strength=-1.0"),
        ({"grad_clip": {"theta": 0.0}}, "theta=0.0"),
        ({"dropout": {"rates": [1.5]}}, "1.5"),
    ],
)
def test_bad_values_are_refused(entry, phrase):
    with pytest.raises(DlrunError, match=phrase):
        regularizers(**entry)


def test_the_dropout_option_fits_the_default_mlp(workdir):
    from conftest import SMOKE, run_dlrun

    result = run_dlrun(*SMOKE, "model=mlp", "regularizer=dropout", "trainer.epochs=1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (config,) = workdir.glob("outputs/*/*/.hydra/config.yaml")
    assert "rates:\n    - 0.5\n" in config.read_text()
