"""What explains a run: per-layer gradient and weight norms, their warnings, the fit verdict."""
