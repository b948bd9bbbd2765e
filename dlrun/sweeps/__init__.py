"""Searches over sweeps: what a hyperparameter search optimizes."""
