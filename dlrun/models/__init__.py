"""Models and their initialisation; each module registers its builders in MODELS or INITS."""
