"""Data sets: each builder returns a `Dataset` of in-memory train/test splits and metadata."""

from dlrun.data.base import Dataset, DatasetMeta, Split

__all__ = ["Dataset", "DatasetMeta", "Split"]
