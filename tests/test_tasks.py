"""Tasks pick the loss and metrics; a wrong loss for a task is refused."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlrun.config.options.trainer import Loss, MonitorMode
from dlrun.data.dataset import DatasetMeta
from dlrun.errors import DlrunError
from dlrun.tasks import direction, metric_columns, task_for

CLASSES = DatasetMeta(task="classification", input_shape=(4,), num_classes=3)
REGRESSION = DatasetMeta(task="regression", input_shape=(4,))
TEXT = DatasetMeta(task="language_model", input_shape=(5,), vocab=("a", "b", "c"))


def test_classification_metrics_are_loss_and_accuracy():
    task = task_for(CLASSES, Loss.auto)
    output = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    target = torch.tensor([0, 1, 0])
    loss = task.loss(output, target)
    sums = {k: v.item() for k, v in task.batch_sums(output, target, loss).items()}
    metrics = task.finalize(sums, task.count(target))
    assert metrics["acc"] == pytest.approx(2 / 3)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(output, target).item())
    assert metric_columns(task) == ("train_loss", "train_acc", "test_loss", "test_acc", "lr")
    assert task.monitor == "test_acc"
    assert direction("test_acc") is MonitorMode.max and direction("train_loss") is MonitorMode.min


@pytest.mark.parametrize(
    ("loss", "reference"),
    [
        (Loss.auto, lambda o, t: F.mse_loss(o, t)),
        (Loss.half_mse, lambda o, t: ((o - t) ** 2 / 2).mean()),
        (Loss.l1, lambda o, t: (o - t).abs().mean()),
        (Loss.huber, lambda o, t: F.huber_loss(o, t)),
    ],
)
def test_regression_losses(loss, reference):
    task = task_for(REGRESSION, loss)
    output, target = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.5]])
    torch.testing.assert_close(task.loss(output, target), reference(output, target))
    assert metric_columns(task) == ("train_loss", "test_loss", "lr")


def test_language_model_reports_perplexity():
    task = task_for(TEXT, Loss.auto)
    logits = torch.zeros(2, 5, 3)  # uniform over 3 characters
    target = torch.zeros(2, 5, dtype=torch.long)
    loss = task.loss(logits, target)
    sums = {k: v.item() for k, v in task.batch_sums(logits, target, loss).items()}
    metrics = task.finalize(sums, task.count(target))
    assert task.count(target) == 10
    assert metrics["loss"] == pytest.approx(math.log(3))
    assert metrics["ppl"] == pytest.approx(3.0)


@pytest.mark.parametrize(("meta", "loss"), [(CLASSES, Loss.mse), (REGRESSION, Loss.cross_entropy)])
def test_a_loss_that_does_not_suit_the_task_is_refused(meta, loss):
    with pytest.raises(DlrunError, match=f"trainer.loss={loss.value}"):
        task_for(meta, loss)


@pytest.mark.parametrize(
    ("meta", "output", "target"),
    [
        (CLASSES, torch.zeros(4, 0), torch.zeros(4, dtype=torch.long)),
        (REGRESSION, torch.zeros(4, 0), torch.zeros(4, 1)),
        (REGRESSION, torch.zeros(4, 2), torch.zeros(4, 1)),
        (TEXT, torch.zeros(4, 3), torch.zeros(4, 5, dtype=torch.long)),
    ],
)
def test_outputs_that_cannot_be_scored_are_refused(meta, output, target):
    with pytest.raises(DlrunError, match="outputs of shape"):
        task_for(meta, Loss.auto).check_shapes(output, target)


def test_every_metric_column_has_the_direction_its_task_declares():
    from dlrun.tasks import TASKS

    for task in TASKS.values():
        for metric, way in task.metrics.items():
            assert direction(f"train_{metric}") is way and direction(f"test_{metric}") is way
    assert direction("test_ppl") is MonitorMode.min
    assert direction("lr") is None and direction("epoch") is None


def test_two_tasks_that_disagree_on_a_metric_are_refused():
    from dlrun.tasks.base import TASKS, Task, register_task

    class Odd(Task):
        name = "odd"
        metrics = {"acc": MonitorMode.min}
        monitor = "test_acc"
        losses = (Loss.mse,)

    with pytest.raises(DlrunError, match="one metric name, one direction"):
        register_task(Odd)
    assert "odd" not in TASKS


def test_a_metrics_direction_is_its_tasks_unless_the_user_chose_one():
    assert direction("test_acc") is MonitorMode.max
    assert direction("train_loss") is MonitorMode.min
    assert direction("lr") is None
    assert direction("test_acc", "min") is MonitorMode.min  # trainer.monitor_mode=min
    assert MonitorMode.max.better(0.8, 0.7) and not MonitorMode.max.better(0.8, 0.75, by=0.05)
    assert MonitorMode.min.better(0.2, 0.3) and not MonitorMode.min.better(0.3, 0.3)
    assert MonitorMode.max.best([0.1, 0.9, 0.5]) == 0.9
    assert MonitorMode.min.best([0.1, 0.9, 0.5]) == 0.1
