"""Exceptions users can act on. Each names the bad input (file, record, residue, key)."""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator


class SepitError(ValueError):
    """Base class for user-facing errors (bad input, bad config)."""


class InputFormatError(SepitError):
    """A file or record that cannot be read: malformed FASTA/flat file/TSV/structure."""


class SequenceError(SepitError):
    """Invalid residue letters, empty or over-long sequence."""


class StructureError(SepitError):
    """Structure file unreadable, empty, wrong format, or not matching the protein."""


class ConfigError(SepitError):
    """Unknown keys, impossible values or missing paths in a config."""


class Cancelled(SepitError):
    """Model work given up on purpose (a server request that timed out or whose client left)."""


class LimitError(SepitError):
    """A request beyond a server limit (HTTP 413); the message names the limit and the option that sets it."""


def read_errors() -> tuple[type[BaseException], ...]:
    """Low-level failures of reading a user's file: missing or unreadable file, truncated or corrupt gzip,
    truncated or header-corrupt safetensors weights."""
    from safetensors import SafetensorError

    return OSError, EOFError, zlib.error, SafetensorError


def describe_read_error(err: BaseException) -> str:
    """A short reason for one of :func:`read_errors`, e.g. ``truncated gzip data (...)``."""
    if isinstance(err, EOFError):
        return f"truncated compressed data ({err})"
    if isinstance(err, zlib.error | gzip.BadGzipFile):
        return f"corrupt gzip data ({err})"
    if type(err).__name__ == "SafetensorError":
        return f"truncated or corrupt safetensors weights ({err})"
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.strerror}: {err.filename}"
    return str(err)


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn :func:`read_errors` inside the block into :class:`InputFormatError` naming ``what``."""
    try:
        yield
    except read_errors() as err:
        raise InputFormatError(f"{what}: {describe_read_error(err)}") from err
