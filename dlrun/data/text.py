"""A character corpus for language modelling: one token per character.

With no `path`, the corpus is the short text shipped in dlrun/data/corpus.txt (written for
dlrun, so it can be shipped and needs no download).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from dlrun.config.options.data import TextConfig
from dlrun.config.registry import DATASETS
from dlrun.data.dataset import LANGUAGE_MODEL, Dataset, DatasetMeta
from dlrun.data.sequences import Sampling, SequenceSplit
from dlrun.errors import DlrunError


@dataclass(frozen=True)
class Generation:
    """After every `every` epochs, continue each prefix by `num_chars` characters."""

    prefixes: tuple[str, ...]
    every: int
    num_chars: int


@DATASETS.register("text")
def text(cfg: TextConfig) -> Dataset:
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
