"""The identity of two proteins as the splits define it (sepit/data/splits.py's docstring): identical residues
of a local Smith-Waterman alignment (BLOSUM62, gaps 11/1) over the shorter length, counted only for a significant
alignment (E <= ``MAX_EVALUE``); pyopal, score-only first and a traceback only for significant pairs."""

from __future__ import annotations

import math

import numpy as np
import pyopal

GAP_OPEN, GAP_EXTEND = 11, 1
MAX_EVALUE = 1e-3  # a link needs a significant alignment
KA_LAMBDA, KA_K = 0.267, 0.041  # Karlin-Altschul constants of BLOSUM62 with gaps 11/1 (BLAST's table)


def total_residues(seqs) -> int:
    """N of the E-value: residues of the set searched."""
    return sum(len(x) for x in seqs)


def evalues(raw_scores: np.ndarray, shorter_len: np.ndarray, db_residues: int) -> np.ndarray:
    """E = m N 2^-bits for Smith-Waterman raw scores (BLOSUM62, 11/1), m = the shorter length."""
    bits = (KA_LAMBDA * np.asarray(raw_scores, dtype=np.float64) - math.log(KA_K)) / math.log(2)
    return evalue_of_bits(bits, shorter_len, db_residues)


def evalue_of_bits(bits, shorter_len, db_residues: int):
    """E = m N 2^-bits (m = the shorter length, N = residues searched); arrays or numbers."""
    return shorter_len * float(db_residues) * np.exp2(-bits)


def identities(query: str, targets: list[str], threads: int = 1, db_residues: int | None = None) -> list[float]:
    """Identity of ``query`` to each target with ``query`` as the alignment's query (one direction); 0 for an
    insignificant alignment (``db_residues``: N of the E-value, default the targets' residues).

    Smith-Waterman can tie between different local alignments of equal score, and pyopal's traceback then
    depends on which sequence is the query: identity is not symmetric (a 60-residue protein against a
    1,166-residue one: 0.317 one way, 0.117 the other). Splits and their checks use :func:`identity_matrix`,
    the larger of the two directions."""
    n = total_residues(targets) if db_residues is None else db_residues
    return _identity_row(query, targets, targets, np.array([len(t) for t in targets]), threads, n).tolist()


def _identity_row(query: str, targets: list[str], target_db, target_lens: np.ndarray, threads: int,
                  db_residues: int) -> np.ndarray:
    """[T] identities of ``query`` (as query) to ``targets`` (``target_db``: the same as a list or a
    ``pyopal.Database``): a score-only pass over all, a traceback for the significant ones, 0 for the rest."""
    out = np.zeros(len(target_lens))
    if not len(target_lens):
        return out
    scores = np.fromiter((r.score for r in _align(query, target_db, "score", threads)), dtype=np.float64,
                         count=len(target_lens))
    shorter = np.minimum(len(query), target_lens)
    keep = np.nonzero(evalues(scores, shorter, db_residues) <= MAX_EVALUE)[0]
    if keep.size:
        results = _align(query, [targets[j] for j in keep.tolist()], "full", threads)
        same = np.fromiter((r.alignment.count("M") for r in results), dtype=np.float64, count=keep.size)
        out[keep] = same / shorter[keep]
    return out


def _align(query: str, targets, mode: str, threads: int):
    return pyopal.align(query, targets, "BLOSUM62", gap_open=GAP_OPEN, gap_extend=GAP_EXTEND, mode=mode,
                        algorithm="sw", threads=threads, ordered=True)


def identity_matrix(queries: list[str], targets: list[str], threads: int = 1,
                    db_residues: int | None = None) -> np.ndarray:
    """[Q, T] identity of every (query, target) pair, the larger of both alignment directions (symmetric;
    ``db_residues``: N of the E-value, default the targets' residues)."""
    t_lens = np.array([len(t) for t in targets])
    n = total_residues(targets) if db_residues is None else db_residues
    out = np.zeros((len(queries), len(targets)))
    if not len(queries) or not len(targets):
        return out
    t_db = pyopal.Database(targets)
    for i, q in enumerate(queries):
        out[i] = _both_directions(q, _identity_row(q, targets, t_db, t_lens, threads, n), targets, n)
    return out


def _both_directions(query: str, row: np.ndarray, targets: list[str], db_residues: int) -> np.ndarray:
    """``row`` (identities with ``query`` as the query) raised to the other direction's identity where larger.
    The score, hence significance, is the same both ways, so only the significant (non-zero) pairs are
    re-aligned."""
    for j in np.nonzero(row)[0].tolist():
        row[j] = max(row[j], _identity_row(targets[j], [query], [query], np.array([len(query)]), 1,
                                           db_residues)[0])
    return row


def best_identity(queries: list[str], targets: list[str], threads: int = 1, db_residues: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the highest identity to any target (both directions, as :func:`identity_matrix`) and that
    target's index (-1: none significant), streamed: memory [Q + T]."""
    t_lens = np.array([len(t) for t in targets])
    n = total_residues(targets) if db_residues is None else db_residues
    best, where = np.zeros(len(queries)), np.full(len(queries), -1)
    if not len(queries) or not len(targets):
        return best, where
    t_db = pyopal.Database(targets)
    for i, q in enumerate(queries):
        row = _both_directions(q, _identity_row(q, targets, t_db, t_lens, threads, n), targets, n)
        if row.max() > 0:
            best[i], where[i] = row.max(), int(row.argmax())
    return best, where


def opal_safe(seq: str) -> str:
    return "".join(c if c in "ARNDCQEGHILKMFPSTWYVBZX" else "X" for c in seq)
