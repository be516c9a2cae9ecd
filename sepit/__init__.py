"""sepit: structure-enhanced protein instruction tuning (SEPIT, arXiv 2410.03553)."""

__version__ = "0.1.0"
