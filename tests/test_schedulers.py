"""Every scheduler builds from its YAML and moves the learning rate as torch's would."""

from __future__ import annotations

import pytest
import torch
from conftest import compose
from torch import nn
from torch.optim import lr_scheduler

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import SCHEDULERS
from dlrun.errors import DlrunError

EPOCHS = 12


def compose_scheduler(name: str, *overrides: str):
    return compose(f"scheduler={name}", *overrides).scheduler


def lrs(step, optimizer, losses) -> list[float]:
    """The learning rate of each epoch, stepping the schedule with that epoch's loss."""
    seen = []
    for loss in losses:
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: changes nothing, keeps torch's order of calls
        step(loss)
    return seen


REFERENCE = {
    "step": lambda opt: lr_scheduler.StepLR(opt, 5, 0.1),
    "multistep": lambda opt: lr_scheduler.MultiStepLR(opt, [5, 8], 0.1),
    "exponential": lambda opt: lr_scheduler.ExponentialLR(opt, 0.9),
    "cosine": lambda opt: lr_scheduler.CosineAnnealingLR(opt, EPOCHS, 0.0),
    "plateau": lambda opt: lr_scheduler.ReduceLROnPlateau(
        opt, "min", factor=0.1, patience=2, threshold=1e-4, min_lr=0.0
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_scheduler_matches_torch(name):
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    ours_opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    ours = SCHEDULERS.build(compose_scheduler(name), ours_opt, EPOCHS)
    torch_opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    reference = REFERENCE[name](torch_opt)
    ours_lrs = lrs(lambda loss: ours.step({"test_loss": loss}), ours_opt, losses)
    if name == "plateau":
        torch_lrs = lrs(reference.step, torch_opt, losses)
    else:
        torch_lrs = lrs(lambda loss: reference.step(), torch_opt, losses)
    assert ours_lrs == torch_lrs
    assert len(set(ours_lrs)) > 1, "the schedule must change the learning rate"


def test_none_keeps_the_learning_rate():
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    assert SCHEDULERS.build(compose_scheduler("none"), optimizer, EPOCHS) is None


def test_plateau_with_an_unknown_monitor_names_it():
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    scheduler = SCHEDULERS.build(
        compose_scheduler("plateau", "scheduler.monitor=test_los"), optimizer, EPOCHS
    )
    with pytest.raises(DlrunError, match="test_los"):
        scheduler.step({"epoch": 1, "test_loss": 1.0})


@pytest.mark.parametrize(
    ("name", "override", "phrase"),
    [
        ("step", "scheduler.gamma=-1", "gamma=-1"),
        ("multistep", "scheduler.milestones=[8,5]", "milestones"),
        ("plateau", "scheduler.factor=2", "factor=2"),
    ],
)
def test_bad_values_are_refused(name, override, phrase):
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
    with pytest.raises(DlrunError, match=phrase):
        SCHEDULERS.build(compose_scheduler(name, override), optimizer, EPOCHS)
