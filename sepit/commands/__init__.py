"""CLI verbs. Each module defines ``register(subparsers)``; see :mod:`sepit.cli`.

Argument types shared by the verbs reject bad values while the command line is parsed, before any model or
data is loaded; argparse reports them as ``sepit <verb>: error: argument --x: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """An integer >= 1 (``--batch-size``, ``--max-new-tokens``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (``--temperature``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (``--vote-weight``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def probability(text: str) -> float:
    """A number in (0, 1] (``--top-p``)."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def existing_file(text: str) -> str:
    """A path to an existing file (checked at parse time, before any long work)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text}")
    return text


def existing_path(text: str) -> str:
    """A path to an existing file or folder (e.g. a structure folder or tarball)."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"not found: {text}")
    return text


def existing_dir(text: str) -> str:
    """A path to an existing folder (model folders, built datasets)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder not found: {text}" if not path.exists() else f"not a folder: {text}")
    return text
