"""A sweep of many jobs: how its jobs are composed, the live view while they run, the report
at its end, what a hyperparameter search optimizes, and the fused launcher (fused/)."""
