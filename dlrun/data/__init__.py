"""Data sets: each builder returns a `Dataset` of in-memory train/test splits and metadata."""

from dlrun.data.base import (
    CLASSIFICATION,
    LANGUAGE_MODEL,
    REGRESSION,
    Dataset,
    DatasetMeta,
    Split,
)

__all__ = ["CLASSIFICATION", "LANGUAGE_MODEL", "REGRESSION", "Dataset", "DatasetMeta", "Split"]
