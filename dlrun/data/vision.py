"""Fashion-MNIST and MNIST through torchvision's dataset classes, found without surprises.

Where the files are looked for, in order:
1. `dataset.root` (default `data/`, or $DLRUN_DATA) in torchvision's layout: ROOT/<Class>/raw/.
2. System folders holding the original .gz files (Debian's `dataset-fashion-mnist` package
   puts them in /usr/share/datasets/fashion-mnist); they are decompressed into ROOT once.
3. torchvision's download, when `dataset.download=true`.

The decoded tensors are kept in ROOT/<Class>/dlrun-tensors.pt, so later runs skip decoding.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from dlrun.config.options.data import VisionDatasetConfig
from dlrun.config.registry import DATASETS
from dlrun.data.dataset import Dataset, DatasetMeta, Split
from dlrun.errors import DlrunError
from dlrun.outputs.io import atomic_write

CACHE_FILE = "dlrun-tensors.pt"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class IdxSource:
    title: str
    torchvision_class: str
    system_dirs: tuple[str, ...]
    install_hint: str | None


FASHION_MNIST = IdxSource(
    title="Fashion-MNIST",
    torchvision_class="FashionMNIST",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu)",
)
MNIST = IdxSource(
    title="MNIST",
    torchvision_class="MNIST",
    system_dirs=(),
    install_hint=None,
)


@DATASETS.register("fashion_mnist")
def fashion_mnist(cfg: VisionDatasetConfig) -> Dataset:
    return load_idx_dataset(FASHION_MNIST, Path(cfg.root), cfg.download)


@DATASETS.register("mnist")
def mnist(cfg: VisionDatasetConfig) -> Dataset:
    return load_idx_dataset(MNIST, Path(cfg.root), cfg.download)


def load_idx_dataset(source: IdxSource, root: Path, download: bool) -> Dataset:
    raw = root / source.torchvision_class / "raw"
    if not _has_idx_files(raw):
        system_dir = next((Path(d) for d in source.system_dirs if _has_gz_files(Path(d))), None)
        if system_dir is not None:
            _decompress_into(system_dir, raw)
        elif download:
            _download(source, root)
        else:
            raise DlrunError(_not_found_message(source, root, raw))
    tensors = _read_cache(raw) or _decode(source, root, raw)
    meta = DatasetMeta(
        task="classification",
        input_shape=(1, *tensors["train_inputs"].shape[1:]),
        num_classes=len(tensors["classes"]),
        class_names=tuple(tensors["classes"]),
    )
    return Dataset(
        train=Split(tensors["train_inputs"].unsqueeze(1), tensors["train_targets"], 1 / 255),
        test=Split(tensors["test_inputs"].unsqueeze(1), tensors["test_targets"], 1 / 255),
        meta=meta,
    )


def _decode(source: IdxSource, root: Path, raw: Path) -> dict:
    """Read the IDX files with torchvision's class, then keep the tensors for next time."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, source.torchvision_class)
    try:
        train = dataset_class(str(root), train=True, download=False)
        test = dataset_class(str(root), train=False, download=False)
        if len(train.data) != len(train.targets) or len(test.data) != len(test.targets):
            raise ValueError("the image and label files hold different numbers of samples")
    except Exception as err:  # torchvision raises assorted errors on damaged files
        raise DlrunError(
            f"{source.title} files in {raw} could not be read ({err}). Delete that folder "
            f"and run again to get fresh copies."
        ) from err
    tensors = {
        "train_inputs": train.data,
        "train_targets": train.targets,
        "test_inputs": test.data,
        "test_targets": test.targets,
        "classes": list(train.classes),
    }
    with contextlib.suppress(DlrunError, OSError):  # a read-only data folder: decode again
        atomic_write(_cache_path(raw), lambda handle: torch.save(tensors, handle))
    return tensors


def _cache_path(raw: Path) -> Path:
    return raw.parent / CACHE_FILE


def _read_cache(raw: Path) -> dict | None:
    """The decoded tensors, if saved after the IDX files last changed (8x faster to load)."""
    cache = _cache_path(raw)
    try:
        if cache.stat().st_mtime < max((raw / name).stat().st_mtime for name in IDX_FILES):
            return None
        return torch.load(cache, map_location="cpu", weights_only=True)
    except Exception:  # missing, stale or damaged: decode the IDX files again
        return None


def _has_idx_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in IDX_FILES)


def _has_gz_files(folder: Path) -> bool:
    return all((folder / f"{name}.gz").is_file() for name in IDX_FILES)


def _decompress_into(source_dir: Path, raw: Path) -> None:
    """Decompress the system copy once into ROOT; each file appears whole or not at all."""
    try:
        for name in IDX_FILES:
            with gzip.open(source_dir / f"{name}.gz", "rb") as packed:
                atomic_write(raw / name, lambda out, packed=packed: shutil.copyfileobj(packed, out))
    except OSError as err:
        raise DlrunError(
            f"Found the data in {source_dir} but could not decompress it into {raw}: {err}. "
            f"Point dataset.root (or $DLRUN_DATA) at a writable folder."
        ) from err


def _download(source: IdxSource, root: Path) -> None:
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, source.torchvision_class)
    try:
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types
        raise DlrunError(
            f"Downloading {source.title} into {root} failed: {err}. Check the network, or "
            f"put the four IDX files ({', '.join(IDX_FILES)}) in "
            f"{root / source.torchvision_class / 'raw'} yourself."
        ) from err


def _not_found_message(source: IdxSource, root: Path, raw: Path) -> str:
    looked = [f"{raw} (dataset.root, or $DLRUN_DATA)"]
    looked += [f"{d} (system copy)" for d in source.system_dirs]
    ways = [source.install_hint] if source.install_hint else []
    ways.append("add dataset.download=true to let torchvision download it")
    ways.append(f"put the four IDX files ({', '.join(IDX_FILES)}) in {raw}")
    return (
        f"{source.title} was not found. Looked in: {'; '.join(looked)}. "
        f"To get it: {'; or '.join(ways)}."
    )
