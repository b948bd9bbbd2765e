"""The loop: epochs of training, each followed by a pass over the test split.

It knows models, optimizers and tensors, nothing about LeNet, Fashion-MNIST or run folders:
what happens after an epoch (metrics, checkpoints, plots) is the `on_epoch_end` callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from dlrun.data.base import Split
from dlrun.data.batches import batches, num_batches
from dlrun.regularizers import Regularizer


@dataclass
class TrainState:
    """Everything that changes while training and goes into a checkpoint."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # draws each epoch's shuffle
    epoch: int = 0  # epochs completed
    best_value: float | None = None
    best_epoch: int | None = None


@dataclass
class LoopOptions:
    epochs: int
    batch_size: int
    eval_batch_size: int
    shuffle: bool
    drop_last: bool
    progress: bool = False
    regularizers: list[Regularizer] = field(default_factory=list)


# The columns of metrics.csv besides `epoch`, in order.
EPOCH_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "lr")

EpochCallback = Callable[[TrainState, dict[str, float], dict[str, float]], None]


def fit(
    state: TrainState,
    train: Split,
    test: Split,
    loss_fn: nn.Module,
    options: LoopOptions,
    on_epoch_end: EpochCallback,
) -> None:
    """Train from `state.epoch` up to `options.epochs`, calling back after every epoch."""
    while state.epoch < options.epochs:
        epoch = state.epoch + 1
        start = time.perf_counter()
        steps = num_batches(len(train), options.batch_size, options.drop_last)
        with _progress(options.progress, f"epoch {epoch}/{options.epochs}", steps) as advance:
            train_metrics = train_epoch(state, train, loss_fn, options, advance)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        test_metrics = evaluate(state.model, test, loss_fn, options.eval_batch_size)
        test_seconds = time.perf_counter() - start
        state.epoch = epoch
        metrics = {
            "epoch": epoch,
            "train_loss": train_metrics["loss"],
            "train_acc": train_metrics["acc"],
            "test_loss": test_metrics["loss"],
            "test_acc": test_metrics["acc"],
            "lr": state.optimizer.param_groups[0]["lr"],
        }
        timings = {
            "epoch": epoch,
            "train_seconds": train_seconds,
            "test_seconds": test_seconds,
            "train_samples_per_s": train_metrics["samples"] / train_seconds,
        }
        on_epoch_end(state, metrics, timings)


def train_epoch(
    state: TrainState,
    split: Split,
    loss_fn: nn.Module,
    options: LoopOptions,
    advance: Callable[[], None],
) -> dict[str, float]:
    model, optimizer = state.model, state.optimizer
    model.train()
    device = split.targets.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in batches(
        split,
        options.batch_size,
        shuffle=options.shuffle,
        drop_last=options.drop_last,
        generator=state.generator,
    ):
        logits = model(x)
        loss = loss_fn(logits, y)
        objective = loss
        for regularizer in options.regularizers:
            penalty = regularizer.penalty(model)
            if penalty is not None:
                objective = objective + penalty
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        # Sums stay on the device: one host sync per epoch, not one per step.
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += len(y)
        advance()
    return {"loss": loss_sum.item() / seen, "acc": correct.item() / seen, "samples": seen}


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, loss_fn: nn.Module, batch_size: int) -> dict:
    model.eval()
    device = split.targets.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for x, y in batches(split, batch_size):
        logits = model(x)
        loss_sum += loss_fn(logits, y) * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
    n = len(split)
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n, "samples": n}


@contextmanager
def _progress(enabled: bool, title: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """A transient rich progress bar over batches, or a no-op when off or not on a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    columns = (
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda: progress.advance(task)
