"""Learning-rate schedules (`scheduler=` group), stepped once per epoch after evaluation."""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from dlrun.config.options.schedulers import (
    CosineConfig,
    ExponentialConfig,
    MultiStepConfig,
    NoneConfig,
    PlateauConfig,
    StepConfig,
)
from dlrun.config.options.trainer import MonitorMode
from dlrun.config.registry import SCHEDULERS
from dlrun.errors import DlrunError


class EpochScheduler:
    """A torch scheduler with one `step(metrics)` for all, plateau included."""

    def __init__(self, scheduler, monitor: str | None = None) -> None:
        self.scheduler, self.monitor = scheduler, monitor

    def step(self, metrics: dict[str, float]) -> None:
        if self.monitor is None:
            self.scheduler.step()
            return
        if self.monitor not in metrics:
            raise DlrunError(
                f"scheduler.monitor={self.monitor} is not a metric of this run: use one of "
                f"{', '.join(k for k in metrics if k != 'epoch')}."
            )
        self.scheduler.step(metrics[self.monitor])

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


@SCHEDULERS.register("none")
def constant(cfg: NoneConfig, optimizer: torch.optim.Optimizer, epochs: int) -> None:
    return None


@SCHEDULERS.register("step")
def step(cfg: StepConfig, optimizer, epochs: int) -> EpochScheduler:
    return EpochScheduler(lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma))


@SCHEDULERS.register("multistep")
def multistep(cfg: MultiStepConfig, optimizer, epochs: int) -> EpochScheduler:
    milestones = list(cfg.milestones)
    if milestones != sorted(set(milestones)) or any(m < 1 for m in milestones):
        raise DlrunError(f"scheduler.milestones={milestones}: give increasing epoch numbers >= 1.")
    return EpochScheduler(lr_scheduler.MultiStepLR(optimizer, milestones, cfg.gamma))


@SCHEDULERS.register("exponential")
def exponential(cfg: ExponentialConfig, optimizer, epochs: int) -> EpochScheduler:
    return EpochScheduler(lr_scheduler.ExponentialLR(optimizer, cfg.gamma))


@SCHEDULERS.register("cosine")
def cosine(cfg: CosineConfig, optimizer, epochs: int) -> EpochScheduler:
    t_max = epochs if cfg.t_max is None else cfg.t_max
    return EpochScheduler(lr_scheduler.CosineAnnealingLR(optimizer, t_max, cfg.eta_min))


@SCHEDULERS.register("plateau")
def plateau(cfg: PlateauConfig, optimizer, epochs: int) -> EpochScheduler:
    scheduler = lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=MonitorMode(cfg.mode).value,
        factor=cfg.factor,
        patience=cfg.patience,
        threshold=cfg.threshold,
        min_lr=cfg.min_lr,
    )
    return EpochScheduler(scheduler, monitor=cfg.monitor)
