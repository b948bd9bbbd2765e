"""A member of a fused group: a run set up by its own recipe, trained with the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import torch

from dlrun.recipe.recipe import Recipe
from dlrun.training.options import LoopOptions
from dlrun.training.seeding import rng_state, set_rng_state
from dlrun.training.state import TrainState
from dlrun.training.steps import StepHooks


@dataclass(eq=False)
class Member:
    recipe: Recipe
    # Its job's log files and Hydra config in place, while it logs or writes.
    speaking: Callable[..., AbstractContextManager]
    # Its global random state (Python's and torch's), as its run alone would have it.
    rng: dict = field(default_factory=rng_state)
    options: LoopOptions = field(init=False)
    hooks: StepHooks = field(init=False)
    sample: torch.Tensor = field(init=False)  # two inputs, for the layers' shapes

    def __post_init__(self) -> None:
        self.options = self.recipe.loop_options()
        self.hooks = StepHooks.of(self.state)
        self.sample = next(iter(self.recipe.train_split.batches(2)))[0]

    @property
    def state(self) -> TrainState:
        return self.recipe.state

    @contextmanager
    def turn(self) -> Iterator[None]:
        """The member's train.log and random state in place: its epoch end runs in it, so a
        checkpoint records the member's own random state."""
        with self.speaking(console=False), self.random():
            yield

    @contextmanager
    def random(self) -> Iterator[None]:
        """The member's random state in the process, kept when it has drawn from it."""
        set_rng_state(self.rng)
        try:
            yield
        finally:
            self.rng = rng_state()
