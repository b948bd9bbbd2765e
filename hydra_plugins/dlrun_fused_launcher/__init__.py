"""dlrun's fused launcher for Hydra: `hydra/launcher=fused` (dlrun/sweeps/fused/)."""
