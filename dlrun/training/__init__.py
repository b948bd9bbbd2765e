"""Training: the state, the step contract, one epoch driver, and what they need: device
choice, seeding, checkpoints, signals, data-parallel ranks."""
