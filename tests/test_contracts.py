"""Batch sources and recurrent models fulfil their written contracts."""

from __future__ import annotations

import torch

from dlrun.config.options.data import Sampling
from dlrun.config.options.models import Cell
from dlrun.data.contracts import BatchSource
from dlrun.data.dataset import Split
from dlrun.data.loader import LoaderSplit
from dlrun.data.sequences import SequenceSplit
from dlrun.models.char_rnn import CharRNN
from dlrun.models.contracts import RecurrentModel
from dlrun.training.distributed import Shard
from dlrun.training.world import World


def test_every_batch_source_fulfils_the_contract():
    split = Split(torch.zeros(8, 3), torch.zeros(8, dtype=torch.long))
    text = SequenceSplit(torch.arange(40), num_steps=4, sampling=Sampling.consecutive)
    sources = [
        split,
        text,
        LoaderSplit(split, torch.device("cpu"), 0, False),
        Shard(split, World(rank=0, size=2), even=True),
    ]
    for source in sources:
        assert isinstance(source, BatchSource), type(source).__name__
        x, y = next(iter(source.batches(2)))
        assert len(x) == len(y) == 2


def test_the_character_model_fulfils_the_recurrent_contract():
    model = CharRNN(5, Cell.lstm, hidden_size=8)
    assert isinstance(model, RecurrentModel)
    output, state = model(torch.zeros(2, 3, dtype=torch.long), None)
    assert output.shape == (2, 3, 5)
    assert len(model.generate([1, 2], 4)) == 4
    assert model.detach_state(state)[0].grad_fn is None
