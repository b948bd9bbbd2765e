"""Learning-rate schedules (`scheduler=` group), stepped once per epoch after evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch.optim import lr_scheduler

from dlrun.config import MonitorMode
from dlrun.errors import DlrunError
from dlrun.registry import SCHEDULERS


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


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise DlrunError(f"scheduler.{key}={value} is out of range: use > 0.")


@dataclass
class NoneConfig:
    name: str = MISSING


@SCHEDULERS.register("none", schema=NoneConfig)
def constant(cfg: NoneConfig, optimizer: torch.optim.Optimizer, epochs: int) -> None:
    return None


@dataclass
class StepConfig:
    name: str = MISSING
    step_size: int = MISSING
    gamma: float = MISSING


@SCHEDULERS.register("step", schema=StepConfig)
def step(cfg: StepConfig, optimizer, epochs: int) -> EpochScheduler:
    _positive("step_size", cfg.step_size)
    _positive("gamma", cfg.gamma)
    return EpochScheduler(lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma))


@dataclass
class MultiStepConfig:
    name: str = MISSING
    milestones: list[int] = field(default_factory=lambda: MISSING)
    gamma: float = MISSING


@SCHEDULERS.register("multistep", schema=MultiStepConfig)
def multistep(cfg: MultiStepConfig, optimizer, epochs: int) -> EpochScheduler:
    _positive("gamma", cfg.gamma)
    milestones = list(cfg.milestones)
    if milestones != sorted(set(milestones)) or any(m < 1 for m in milestones):
        raise DlrunError(f"scheduler.milestones={milestones}: give increasing epoch numbers >= 1.")
    return EpochScheduler(lr_scheduler.MultiStepLR(optimizer, milestones, cfg.gamma))


@dataclass
class ExponentialConfig:
    name: str = MISSING
    gamma: float = MISSING


@SCHEDULERS.register("exponential", schema=ExponentialConfig)
def exponential(cfg: ExponentialConfig, optimizer, epochs: int) -> EpochScheduler:
    _positive("gamma", cfg.gamma)
    return EpochScheduler(lr_scheduler.ExponentialLR(optimizer, cfg.gamma))


@dataclass
class CosineConfig:
    name: str = MISSING
    t_max: int | None = MISSING  # epochs of one half-cosine; null: trainer.epochs
    eta_min: float = MISSING


@SCHEDULERS.register("cosine", schema=CosineConfig)
def cosine(cfg: CosineConfig, optimizer, epochs: int) -> EpochScheduler:
    t_max = epochs if cfg.t_max is None else cfg.t_max
    _positive("t_max", t_max)
    return EpochScheduler(lr_scheduler.CosineAnnealingLR(optimizer, t_max, cfg.eta_min))


@dataclass
class PlateauConfig:
    name: str = MISSING
    monitor: str = MISSING
    mode: MonitorMode = MISSING
    factor: float = MISSING
    patience: int = MISSING
    threshold: float = MISSING
    min_lr: float = MISSING


@SCHEDULERS.register("plateau", schema=PlateauConfig)
def plateau(cfg: PlateauConfig, optimizer, epochs: int) -> EpochScheduler:
    if not 0 < cfg.factor < 1:
        raise DlrunError(f"scheduler.factor={cfg.factor} is out of range: use 0 < factor < 1.")
    scheduler = lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=MonitorMode(cfg.mode).value,
        factor=cfg.factor,
        patience=cfg.patience,
        threshold=cfg.threshold,
        min_lr=cfg.min_lr,
    )
    return EpochScheduler(scheduler, monitor=cfg.monitor)
