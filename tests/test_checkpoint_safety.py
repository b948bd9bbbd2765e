"""Checkpoints load with weights_only: crafted, truncated or foreign files are refused clearly."""

from __future__ import annotations

import pickle

import pytest
import torch

from dlrun.errors import DlrunError
from dlrun.training.checkpoint import load_checkpoint


class RunsCodeOnLoad:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # creating the marker file proves code ran


def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "dlrun-checkpoint-v1", "payload": RunsCodeOnLoad(str(marker))}, path)
    with pytest.raises(DlrunError, match="not a readable dlrun checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what plain torch.load would have run
        torch.load(path, weights_only=True)


def test_truncated_and_foreign_files_give_one_clear_error(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"format": "dlrun-checkpoint-v1", "epoch": 1}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(DlrunError, match="truncated"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.pt"
    text.write_text("just some text")
    with pytest.raises(DlrunError, match="not a readable dlrun checkpoint"):
        load_checkpoint(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(DlrunError, match="not a dlrun checkpoint"):
        load_checkpoint(foreign)


def test_best_is_the_file_of_its_epoch_after_last_moves_on(tmp_path):
    from dlrun.outputs.io import atomic_link, atomic_write_text

    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    atomic_write_text(last, "epoch 3")
    atomic_link(last, best)
    atomic_write_text(last, "epoch 4")  # a later epoch renames a new file over last.pt
    assert best.read_text() == "epoch 3" and last.read_text() == "epoch 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
