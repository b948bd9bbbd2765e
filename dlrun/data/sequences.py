"""Token sequences cut into (inputs, next-token targets) minibatches, as in the d2l tutorial.

consecutive: the corpus is laid out as `batch_size` parallel rows and read left to right, so
    batch i+1 continues batch i row by row and the recurrent state is carried across batches.
random: the corpus is cut into subsequences of `num_steps` that are shuffled; neighbouring
    batches are unrelated and the state starts afresh for each.
Each training epoch starts at a random offset in [0, num_steps), so epochs see different cuts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from dlrun.config.options.data import Sampling


@dataclass
class SequenceSplit:
    tokens: torch.Tensor  # 1-d int64 token ids
    num_steps: int
    sampling: Sampling

    @property
    def stateful(self) -> bool:
        return Sampling(self.sampling) is Sampling.consecutive

    @property
    def targets(self) -> torch.Tensor:
        """Every token that is predicted from the ones before it."""
        return self.tokens[1:]

    def __len__(self) -> int:
        """Tokens predicted in one pass, the unit of 'samples/s' for text."""
        return max(len(self.tokens) - 1, 0)

    def head(self, n: int | None, seed: int = 0) -> SequenceSplit:
        """The first n characters: text stays contiguous."""
        if n is None or n >= len(self):
            return self
        return SequenceSplit(self.tokens[: n + 1], self.num_steps, self.sampling)

    def to(self, device: torch.device) -> SequenceSplit:
        return SequenceSplit(self.tokens.to(device), self.num_steps, self.sampling)

    def _rows(self, batch_size: int) -> int:
        """Parallel rows for consecutive reading: fewer when the text is short (evaluation)."""
        return max(1, min(batch_size, len(self) // (2 * self.num_steps)))

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches in an epoch with offset 0 (a random offset may give one fewer)."""
        usable = len(self)
        if self.stateful:
            return (usable // self._rows(batch_size)) // self.num_steps
        subsequences = usable // self.num_steps
        return subsequences // batch_size if drop_last else -(-subsequences // batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        skip: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        steps = self.num_steps
        offset = int(torch.randint(steps, (1,), generator=generator)) if shuffle else 0
        corpus = self.tokens[offset:]
        if self.stateful:
            batch_size = self._rows(batch_size)
            per_row = (len(corpus) - 1) // batch_size
            xs = corpus[: batch_size * per_row].reshape(batch_size, per_row)
            ys = corpus[1 : batch_size * per_row + 1].reshape(batch_size, per_row)
            for start in range(skip * steps, (per_row // steps) * steps, steps):
                yield xs[:, start : start + steps], ys[:, start : start + steps]
            return
        count = (len(corpus) - 1) // steps
        starts = torch.arange(count, device=corpus.device) * steps
        if shuffle:
            starts = starts[torch.randperm(count, generator=generator).to(corpus.device)]
        stop = count - count % batch_size if drop_last else count
        window = torch.arange(steps, device=corpus.device)
        for first in range(skip * batch_size, stop, batch_size):
            index = starts[first : first + batch_size, None] + window
            yield corpus[index], corpus[index + 1]
