"""Optimizers, learning-rate schedulers and regularizers."""
