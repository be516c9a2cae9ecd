"""sepit: structure-enhanced protein instruction tuning (SEPIT, arXiv 2410.03553)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("Sepit", "Answer"):
        from sepit import api

        return getattr(api, name)
    raise AttributeError(f"module 'sepit' has no attribute {name!r}")
