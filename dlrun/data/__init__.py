"""Data sets and batch sources: each builder returns a `Dataset` of train/test splits."""
