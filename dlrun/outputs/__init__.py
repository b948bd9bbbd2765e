"""What a run leaves behind: the run folder, atomic writes, plots, loggers, provenance."""
