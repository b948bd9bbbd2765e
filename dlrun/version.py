"""dlrun's version: what summary.json records as the code a run ran (outputs/provenance.py)."""

__version__ = "0.1.0"
