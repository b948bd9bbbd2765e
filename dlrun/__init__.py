"""dlrun: run, vary and compare deep-learning fundamentals from the command line."""

__version__ = "0.1.0"
