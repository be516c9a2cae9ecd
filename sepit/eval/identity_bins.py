"""Identity bins: each held-out protein's highest sequence identity to the training (reference) split.

Identity is the homology split's own definition (:func:`sepit.data.splits.identity_matrix`: identical aligned
residues of a Smith-Waterman alignment over the shorter length), computed exhaustively (every held-out protein
against every training protein), once per dataset, and stored as ``DATASET/identity_to_train.json``
(``{"reference_split": "train", "definition": ..., "identity": {accession: fraction}}``). Reports then give
every metric per bin (:data:`BINS`).
"""

from __future__ import annotations

import json
from pathlib import Path

from sepit.errors import ConfigError, InputFormatError

FILE_NAME = "identity_to_train.json"
DEFINITION = "max over training proteins of identical aligned residues / shorter length (SW, BLOSUM62 11/1)"
BINS = ((0.0, 0.3, "<30%"), (0.3, 0.5, "30-50%"), (0.5, 0.7, "50-70%"), (0.7, 0.9, "70-90%"),
        (0.9, float("inf"), ">=90%"))
BIN_LABELS = tuple(label for _, _, label in BINS)


def bin_of(identity: float) -> str:
    for lo, hi, label in BINS:
        if lo <= identity < hi:
            return label
    raise ValueError(f"identity {identity} is not a fraction >= 0")


def highest_identity(queries: dict[str, str], reference: dict[str, str], threads: int = 1) -> dict[str, float]:
    """Accession -> highest identity of its sequence to any reference sequence (0.0 when none), as the split
    defines it (both alignment directions, :func:`sepit.data.splits.best_identity`)."""
    from sepit.data.splits import best_identity, opal_safe

    best, _ = best_identity([opal_safe(s.upper()) for s in queries.values()],
                            [opal_safe(s.upper()) for s in reference.values()], threads)
    return {acc: max(float(b), 0.0) for acc, b in zip(queries, best.tolist(), strict=True)}


def compute(data_dir, splits: tuple[str, ...] = ("valid", "test"), reference: str = "train",
            threads: int = 1) -> dict:
    """The identity record of a built dataset (see the module docstring)."""
    from sepit.data.store import DatasetStore

    store = DatasetStore(data_dir)
    table = store.instructions()
    by_split: dict[str, set[str]] = {}
    for acc, split in zip(table["accession"], table["split"], strict=True):
        by_split.setdefault(split, set()).add(acc)
    ref = {a: store.protein(a).sequence for a in sorted(by_split.get(reference, ()))}
    queries = {a: store.protein(a).sequence for s in splits for a in sorted(by_split.get(s, ())) if a not in ref}
    return {"reference_split": reference, "definition": DEFINITION, "splits": list(splits),
            "identity": highest_identity(queries, ref, threads)}


def load_or_compute(data_dir, path: str | Path | None = None, threads: int = 1) -> dict[str, float]:
    """Accession -> identity from ``path`` (default ``DATASET/identity_to_train.json``), computed and stored
    first when the file is missing."""
    from sepit.io_utils import atomic_file

    path = Path(path) if path else Path(data_dir) / FILE_NAME
    if not path.is_file():
        record = compute(data_dir, threads=threads)
        try:
            with atomic_file(path) as fh:
                fh.write(json.dumps(record, indent=1))
        except OSError as err:
            raise ConfigError(f"cannot store the identity file {path} ({err.strerror}); pass another path "
                              "(sepit eval --identity FILE)") from None
    return read(path)


def read(path: str | Path) -> dict[str, float]:
    try:
        record = json.loads(Path(path).read_text())
        return {str(k): float(v) for k, v in record["identity"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputFormatError(f"{path}: not an identity file written by sepit ({err})") from None
