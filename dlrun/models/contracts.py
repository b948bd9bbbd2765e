"""The contract of a recurrent model, as the language-model task and text generation use it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class RecurrentModel(Protocol):
    def __call__(self, x: torch.Tensor, state: Any | None = None) -> tuple[torch.Tensor, Any]:
        """Token ids (N, steps) and the hidden state (None: zeros) in; logits
        (N, steps, vocabulary) and the hidden state after the last step out."""
        ...

    @staticmethod
    def detach_state(state: Any | None) -> Any | None:
        """The same state cut from the graph: training carries it, not its history."""
        ...

    def generate(self, prefix_ids: list[int], num_chars: int) -> list[int]:
        """The `num_chars` ids that follow the prefix, each predicted from the ones before."""
        ...
