"""Sequence searches in bounded memory: per-query top-k hits streamed from MMseqs2's hit file.

:func:`mmseqs_topk` runs ``mmseqs easy-search`` and reads its tab-separated hit file line by line: hits of one
query are contiguous there, so only the current query's hits (at most ``max_seqs``) and its top ``k`` are ever
held, never a full ranked list nor the whole file. Identity is defined as in the homology split (identical
aligned residues / length of the shorter sequence, :mod:`sepit.data.splits`).

Targets are FASTA files, an MMseqs2 database made once with :func:`create_db` (reused across searches, e.g. by
a retrieval index), or (id, sequence) pairs written to a temporary FASTA file.
"""

from __future__ import annotations

import heapq
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sepit.errors import SepitError

GAP_OPEN, GAP_EXTEND = 11, 1  # as the homology split (BLOSUM62)
FORMAT = "query,target,bits,evalue,nident,qlen,tlen"
Sequences = str | Path | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Hit:
    """One alignment of ``query`` to ``target``; ``identity`` = identical residues / shorter length."""

    query: str
    target: str
    bits: float
    evalue: float
    nident: int
    qlen: int
    tlen: int

    @property
    def identity(self) -> float:
        return self.nident / max(1, min(self.qlen, self.tlen))


def mmseqs_exe() -> str:
    exe = shutil.which("mmseqs")
    if exe is None:
        raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2')")
    return exe


def run_mmseqs(args: list[str], what: str) -> None:
    """Run ``mmseqs <args>``; a failure raises :class:`SepitError` with the end of its error output."""
    proc = subprocess.run([mmseqs_exe(), *args, "-v", "1"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SepitError(f"mmseqs {what} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")


def write_fasta(path: str | Path, records: Iterable[tuple[str, str]]) -> int:
    """Write (id, sequence) pairs as FASTA, one record at a time; returns how many were written."""
    n = 0
    with open(path, "w") as fh:
        for name, seq in records:
            if any(c.isspace() for c in name) or not name:
                raise SepitError(f"FASTA id {name!r} is empty or holds white space")
            fh.write(f">{name}\n{seq}\n")
            n += 1
    return n


def create_db(fasta: str | Path, db: str | Path) -> Path:
    """An MMseqs2 sequence database ``db`` from ``fasta`` (made once, searched many times)."""
    run_mmseqs(["createdb", str(fasta), str(db)], "createdb")
    return Path(db)


def mmseqs_topk(queries: Sequences, targets: Sequences, k: int = 10, sensitivity: float = 7.5,
                max_seqs: int = 300, evalue: float = 10.0, threads: int = 1,
                extra: list[str] | None = None) -> Iterator[tuple[str, list[Hit]]]:
    """Yield (query id, its best ``k`` hits by bit score, best first) for every query with a hit, in the
    order MMseqs2 writes them (query database order). ``queries``/``targets``: FASTA path, MMseqs2 database
    path (targets), or (id, sequence) pairs. Self hits (same id) are kept; callers drop them if needed."""
    if k < 1:
        raise SepitError(f"top-k search needs k >= 1, got {k}")
    with tempfile.TemporaryDirectory(prefix="sepit-search-") as tmp:
        work = Path(tmp)
        query_path = _as_fasta(queries, work / "queries.fasta")
        target_path = _as_fasta(targets, work / "targets.fasta")
        hits = work / "hits.tsv"
        run_mmseqs(["easy-search", str(query_path), str(target_path), str(hits), str(work / "tmp"), "-a",
                    "-s", str(sensitivity), "-e", str(evalue), "--max-seqs", str(max(max_seqs, k)),
                    "--gap-open", str(GAP_OPEN), "--gap-extend", str(GAP_EXTEND), "--format-output", FORMAT,
                    "--threads", str(threads), *(extra or [])], "easy-search")
        yield from read_topk(hits, k)


def read_topk(hits_tsv: str | Path, k: int) -> Iterator[tuple[str, list[Hit]]]:
    """Stream an MMseqs2 hit file (``FORMAT`` columns) -> (query, top-k hits by bit score) per query."""
    current: str | None = None
    group: list[Hit] = []
    with open(hits_tsv) as fh:
        for line in fh:
            hit = _parse(line)
            if hit.query != current:
                if group:
                    yield current, _best(group, k)
                current, group = hit.query, []
            group.append(hit)
            if len(group) > 4 * k:  # keep the group bounded even for a query with very many hits
                group = _best(group, k)
    if group:
        yield current, _best(group, k)


def _best(group: list[Hit], k: int) -> list[Hit]:
    return heapq.nlargest(k, group, key=lambda h: (h.bits, -h.evalue))  # stable: ties keep file order


def _parse(line: str) -> Hit:
    q, t, bits, ev, nident, qlen, tlen = line.rstrip("\n").split("\t")
    return Hit(q, t, float(bits), float(ev), int(nident), int(qlen), int(tlen))


def _as_fasta(source: Sequences, path: Path) -> Path:
    if isinstance(source, str | Path):
        src = Path(source)
        if not (src.is_file() or Path(f"{src}.dbtype").is_file()):
            raise SepitError(f"sequence file or MMseqs2 database not found: {src}")
        return src
    if write_fasta(path, source) == 0:
        raise SepitError("no sequences to search")
    return path
