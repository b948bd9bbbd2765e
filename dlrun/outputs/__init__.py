"""What a run leaves behind: the run folder, atomic writes, its lock, plots, trackers,
provenance."""
