"""The training loop and what it needs: device choice, seeding, checkpoints."""
