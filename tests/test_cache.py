"""Bundled data sets are decoded once and loaded from the cache after that."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

import dlrun.builtins  # noqa: F401  (registers the built-in data sets)
from dlrun.config.registry import DATASETS

DIGITS = {"name": "digits", "image_size": 28, "test_size": 0.2, "random_state": 0}


def test_digits_from_the_cache_equal_the_decoded_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DLRUN_CACHE", str(tmp_path))
    decoded = DATASETS.build(DIGITS)
    (cache,) = tmp_path.glob("digits-28-0.2-0-*.pt")
    loaded = DATASETS.build(DIGITS)
    for split in ("train", "test"):
        assert torch.equal(getattr(decoded, split).inputs, getattr(loaded, split).inputs)
        assert torch.equal(getattr(decoded, split).targets, getattr(loaded, split).targets)
    other = DATASETS.build({**DIGITS, "random_state": 1})
    assert len(list(tmp_path.glob("digits-*.pt"))) == 2
    assert not torch.equal(other.test.targets, loaded.test.targets)
    cache.write_bytes(b"torn")  # a damaged cache is decoded again, not an error
    assert torch.equal(DATASETS.build(DIGITS).test.targets, decoded.test.targets)


def test_a_cached_run_does_not_import_scikit_learn(tmp_path):
    code = (
        "import sys, dlrun.builtins\n"
        "from dlrun.config.registry import DATASETS\n"
        f"DATASETS.build({DIGITS!r})\n"
        "print('sklearn' in sys.modules)\n"
    )
    env = {**os.environ, "DLRUN_CACHE": str(tmp_path)}
    first, again = (
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    )
    assert first.stdout.strip() == "True", first.stderr
    assert again.stdout.strip() == "False", again.stderr


def test_a_cache_folder_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("DLRUN_CACHE", str(blocked))
    assert len(DATASETS.build(DIGITS).train) > 0
