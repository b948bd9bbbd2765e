"""What a config may say: schemas, the option registries, value checks, Hydra plugin checks."""
