"""Character corpus and sequence batching (consecutive and random sampling)."""

from __future__ import annotations

import pytest
import torch

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import DATASETS
from dlrun.data.sequences import SequenceSplit
from dlrun.errors import DlrunError

TEXT = {
    "name": "text",
    "path": None,
    "max_chars": 10000,
    "lowercase": False,
    "num_steps": 35,
    "sampling": "consecutive",
    "test_fraction": 0.1,
    "prefixes": ["The "],
    "generate_every": 1,
    "generate_chars": 50,
}


def test_shipped_corpus_gives_a_vocabulary_and_splits():
    data = DATASETS.build(TEXT)
    vocab = data.meta.vocab
    assert data.meta.task == "language_model"
    assert data.meta.input_shape == (35,)
    assert "\n" not in vocab and " " in vocab and vocab == tuple(sorted(vocab))
    total = len(data.train.tokens) + len(data.test.tokens)
    assert 8000 < total <= 10000
    assert len(data.test.tokens) == int(total * 0.1)
    text = "".join(vocab[i] for i in data.train.tokens[:20].tolist())
    assert text.startswith("A Short Walk Through")
    assert data.generation.prefixes == ("The ",)


def test_corpus_file_newlines_become_spaces_and_max_chars_cuts(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(("ab\ncd " * 400), encoding="utf-8")
    data = DATASETS.build({**TEXT, "path": str(path), "max_chars": 1000, "prefixes": ["ab"]})
    assert data.meta.vocab == (" ", "a", "b", "c", "d")
    assert len(data.train.tokens) + len(data.test.tokens) == 1000


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"path": "missing.txt"}, "does not exist"),
        ({"prefixes": ["Zebra\u00e9"]}, "never occur"),
        ({"num_steps": 0}, "num_steps=0"),
        ({"test_fraction": 1.0}, "test_fraction=1.0"),
        ({"max_chars": 50}, "too few"),
    ],
)
def test_bad_text_settings_are_refused(change, phrase):
    with pytest.raises(DlrunError, match=phrase):
        DATASETS.build({**TEXT, **change})


def test_empty_corpus_is_refused(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(DlrunError, match="empty"):
        DATASETS.build({**TEXT, "path": str(path)})


def test_consecutive_batches_continue_each_row():
    split = SequenceSplit(torch.arange(1000), num_steps=5, sampling="consecutive")
    batches = list(split.batches(4, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert len(batches) in (split.num_batches(4), split.num_batches(4) - 1)
    for (x1, _), (x2, _) in zip(batches, batches[1:], strict=False):
        assert torch.equal(x2[:, 0], x1[:, -1] + 1)  # row r of batch i+1 follows row r of i
    for x, y in batches:
        assert x.shape == (4, 5) and torch.equal(y, x + 1)


def test_random_batches_are_shuffled_windows_covering_the_corpus_once():
    split = SequenceSplit(torch.arange(1001), num_steps=10, sampling="random")
    batches = list(split.batches(8, shuffle=True, generator=torch.Generator().manual_seed(2)))
    starts = torch.cat([x[:, 0] for x, _ in batches])
    assert len(set(starts.tolist())) == len(starts)  # no window twice
    assert starts.tolist() != sorted(starts.tolist())  # shuffled
    offset = int(starts.min())
    assert 0 <= offset < 10 and all((s - offset) % 10 == 0 for s in starts.tolist())
    for x, y in batches:
        assert torch.equal(y, x + 1) and torch.equal(
            x[:, 1:] - x[:, :-1], torch.ones_like(x[:, 1:])
        )
    assert not split.stateful and SequenceSplit(torch.arange(9), 2, "consecutive").stateful


def test_evaluation_reads_short_texts_with_fewer_rows():
    split = SequenceSplit(torch.arange(200), num_steps=10, sampling="consecutive")
    batches = list(split.batches(1024))
    assert batches and batches[0][0].shape[0] == 9  # 199 // 20 rows instead of 1024
    assert len(batches) == split.num_batches(1024)
