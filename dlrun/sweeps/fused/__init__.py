"""Fused sweeps: jobs that share their shapes train as one program."""
