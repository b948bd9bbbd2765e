"""A character corpus for language modelling: one token per character.

With no `path`, the corpus is the short text shipped in dlrun/data/corpus.txt (written for
dlrun, so it can be shipped and needs no download).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from omegaconf import MISSING

from dlrun.data.base import LANGUAGE_MODEL, Dataset, DatasetMeta
from dlrun.data.sequences import Sampling, SequenceSplit
from dlrun.errors import DlrunError
from dlrun.registry import DATASETS


@dataclass
class TextConfig:
    name: str = MISSING
    path: str | None = MISSING
    max_chars: int | None = MISSING
    lowercase: bool = MISSING
    num_steps: int = MISSING
    sampling: Sampling = MISSING
    test_fraction: float = MISSING
    prefixes: list[str] = field(default_factory=lambda: MISSING)
    generate_every: int = MISSING
    generate_chars: int = MISSING


@dataclass(frozen=True)
class Generation:
    """After every `every` epochs, continue each prefix by `num_chars` characters."""

    prefixes: tuple[str, ...]
    every: int
    num_chars: int


@DATASETS.register("text", schema=TextConfig)
def text(cfg: TextConfig) -> Dataset:
    _check(cfg)
    corpus = read_corpus(cfg.path).replace("\r\n", "\n").replace("\n", " ")
    if cfg.lowercase:
        corpus = corpus.lower()
    corpus = corpus[: cfg.max_chars]
    vocab = tuple(sorted(set(corpus)))
    for prefix in cfg.prefixes:
        unknown = sorted(set(prefix) - set(vocab))
        if unknown:
            raise DlrunError(
                f"dataset.prefixes has {prefix!r}, whose characters {unknown} never occur in "
                f"the corpus, so the model cannot read them. Use characters of the corpus."
            )
    index = {char: i for i, char in enumerate(vocab)}
    tokens = torch.tensor([index[char] for char in corpus], dtype=torch.long)
    n_test = int(len(tokens) * cfg.test_fraction)
    needed = 2 * cfg.num_steps + 2
    if n_test < needed or len(tokens) - n_test < needed:
        raise DlrunError(
            f"The corpus has {len(tokens)} characters: too few for a {cfg.test_fraction} test "
            f"split with dataset.num_steps={cfg.num_steps}. Use a longer text, a larger "
            f"dataset.max_chars or a smaller dataset.num_steps."
        )
    train = SequenceSplit(tokens[:-n_test], cfg.num_steps, cfg.sampling)
    test = SequenceSplit(tokens[-n_test:], cfg.num_steps, Sampling.consecutive)
    meta = DatasetMeta(task=LANGUAGE_MODEL, input_shape=(cfg.num_steps,), vocab=vocab)
    generation = Generation(tuple(cfg.prefixes), cfg.generate_every, cfg.generate_chars)
    return Dataset(train=train, test=test, meta=meta, generation=generation)


def read_corpus(path: str | None) -> str:
    if path is None:
        return resources.files("dlrun.data").joinpath("corpus.txt").read_text(encoding="utf-8")
    try:
        corpus = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DlrunError(f"dataset.path={path} does not exist: give a UTF-8 text file.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DlrunError(f"dataset.path={path} could not be read as UTF-8 text: {err}.") from err
    if not corpus.strip():
        raise DlrunError(f"dataset.path={path} is empty: the corpus needs some text.")
    return corpus


def _check(cfg: TextConfig) -> None:
    if cfg.num_steps < 1:
        raise DlrunError(f"dataset.num_steps={cfg.num_steps} is out of range: use >= 1.")
    if cfg.max_chars is not None and cfg.max_chars < 1:
        raise DlrunError(f"dataset.max_chars={cfg.max_chars}: use null (all) or >= 1.")
    if not 0 < cfg.test_fraction < 1:
        raise DlrunError(
            f"dataset.test_fraction={cfg.test_fraction} is out of range: use 0 < f < 1."
        )
    if cfg.generate_every < 0 or cfg.generate_chars < 0:
        raise DlrunError("dataset.generate_every and dataset.generate_chars must be >= 0.")
