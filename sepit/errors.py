"""Exceptions users can act on. Each names the bad input (file, record, residue, key)."""


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
