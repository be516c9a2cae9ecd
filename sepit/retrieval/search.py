"""Homology search of query proteins against a reference: MMseqs2 (a target database built once, reused by every
query) or pyopal (exhaustive Smith-Waterman; small references and the fallback). Both return the same
:class:`Hit` rows, best first, at most ``k`` per query (the hit file is streamed; no full ranked list is kept).

Identity is the homology split's definition (:mod:`sepit.data.splits`): identical aligned residues over the
length of the *shorter* sequence, so that it reads against the split's threshold. Alignments use BLOSUM62 with
gap open 11, extend 1 in both backends; pyopal's e-values come from the Karlin-Altschul statistics of that
scoring system (lambda 0.267, K 0.041, as BLAST), MMseqs2 reports its own.
"""

from __future__ import annotations

import heapq
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sepit.data.splits import GAP_EXTEND, GAP_OPEN, opal_safe
from sepit.errors import SepitError

LAMBDA, K_GAPPED = 0.267, 0.041  # BLOSUM62, gap 11/1 (NCBI BLAST's gapped statistics)
MMSEQS_FORMAT = "query,target,nident,qlen,tlen,qstart,qend,tstart,tend,evalue,bits"


@dataclass(frozen=True)
class Hit:
    """One reference protein found for a query."""

    accession: str
    identity: float  # identical aligned residues / shorter length (the split's definition)
    query_coverage: float  # aligned query residues / query length
    target_coverage: float  # aligned target residues / target length
    evalue: float
    bits: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and k != "evalue" else v) for k, v in asdict(self).items()}

    def sort_key(self) -> tuple:
        return (self.evalue, -self.bits, self.accession)


class TopK:
    """Bounded best-``k`` hits per query (smallest e-value, then highest bit score)."""

    def __init__(self, k: int):
        self.k = k
        self.heaps: dict[str, list] = {}

    def add(self, query: str, hit: Hit) -> None:
        heap = self.heaps.setdefault(query, [])
        key = tuple(-x if isinstance(x, float) else x for x in hit.sort_key()[:2])  # worst on top
        item = (key, hit.accession, hit)
        if len(heap) < self.k:
            heapq.heappush(heap, item)
        elif key > heap[0][0]:
            heapq.heapreplace(heap, item)

    def result(self, queries: Iterable[str]) -> dict[str, list[Hit]]:
        return {q: sorted((h for _, _, h in self.heaps.get(q, [])), key=Hit.sort_key) for q in queries}


def bit_score(raw: float) -> float:
    return (LAMBDA * raw - math.log(K_GAPPED)) / math.log(2)


def karlin_evalue(raw: float, query_len: int, db_residues: int) -> float:
    return K_GAPPED * query_len * db_residues * math.exp(-LAMBDA * raw)


class OpalSearch:
    """Exhaustive Smith-Waterman (pyopal) of each query against every reference sequence."""

    def __init__(self, accessions: list[str], sequences: list[str], threads: int = 1):
        import pyopal

        self._pyopal = pyopal
        self.accessions = list(accessions)
        self.sequences = [opal_safe(s.upper()) for s in sequences]
        self.database = pyopal.Database(self.sequences)
        self.residues = sum(len(s) for s in self.sequences)
        self.threads = threads

    def _align(self, query: str, targets, mode: str):
        return self._pyopal.align(query, targets, "BLOSUM62", gap_open=GAP_OPEN, gap_extend=GAP_EXTEND,
                                  mode=mode, threads=self.threads, ordered=True)

    def search(self, queries: dict[str, str], k: int = 3, exclude_self: bool = True,
               max_evalue: float | None = 10.0) -> dict[str, list[Hit]]:
        return {qid: self._one(qid, seq, k, exclude_self, max_evalue) for qid, seq in queries.items()}

    def _one(self, qid: str, seq: str, k: int, exclude_self: bool, max_evalue: float | None) -> list[Hit]:
        query = opal_safe(seq.upper())
        if not self.sequences or not query:
            return []
        scores = [r.score for r in self._align(query, self.database, "score")]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], self.accessions[i]))
        chosen = []
        for i in order:
            if len(chosen) == k or scores[i] <= 0:
                break
            evalue = karlin_evalue(scores[i], len(query), self.residues)
            if max_evalue is not None and evalue > max_evalue:
                break
            if not (exclude_self and self.accessions[i] == qid):
                chosen.append((i, evalue))
        if not chosen:
            return []
        full = self._align(query, [self.sequences[i] for i, _ in chosen], "full")
        return [_opal_hit(self.accessions[i], r, len(query), len(self.sequences[i]), e)
                for (i, e), r in zip(chosen, full, strict=True)]


def _opal_hit(accession: str, r, qlen: int, tlen: int, evalue: float) -> Hit:
    return Hit(accession, r.alignment.count("M") / min(qlen, tlen), (r.query_end - r.query_start + 1) / qlen,
               (r.target_end - r.target_start + 1) / tlen, evalue, bit_score(r.score))


def mmseqs_exe() -> str | None:
    return shutil.which("mmseqs")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SepitError(f"mmseqs {what} failed: {proc.stderr.strip()[-500:]}")


def create_mmseqs_db(fasta: Path, db: Path, precompute: bool = False, sensitivity: float = 7.5,
                     threads: int = 1) -> None:
    """The MMseqs2 target database (``mmseqs createdb``), built once in the index folder. ``precompute`` also
    stores its k-mer index (``mmseqs createindex``: large, a fixed ~0.9 GB table at k=7, but queries against a
    big reference no longer rebuild it)."""
    exe = mmseqs_exe()
    if exe is None:
        raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2' or use method opal)")
    db.parent.mkdir(parents=True, exist_ok=True)
    _run([exe, "createdb", str(fasta), str(db), "-v", "1"], "createdb")
    if precompute:
        with tempfile.TemporaryDirectory(prefix="sepit-createindex-") as tmp:
            _run([exe, "createindex", str(db), tmp, "-s", str(sensitivity), "--threads", str(threads), "-v", "1"],
                 "createindex")


class MmseqsSearch:
    """``mmseqs easy-search`` of the queries against a prebuilt target database (ids = accessions). The database
    (and its precomputed k-mer index) is memory-mapped (``--db-load-mode 2``), not read into memory per call:
    at 480k proteins a single query takes 0.3 s instead of 1.8 s (benchmarks/results/retrieval.md)."""

    def __init__(self, db: Path, threads: int = 1, sensitivity: float = 7.5, max_seqs: int = 300,
                 db_load_mode: int = 2):
        self.db, self.threads, self.sensitivity, self.max_seqs = Path(db), threads, sensitivity, max_seqs
        self.db_load_mode = db_load_mode  # 2: mmap; 0: MMseqs2's default (reads the k-mer index per call)
        if mmseqs_exe() is None:
            raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2' or use method opal)")

    def search(self, queries: dict[str, str], k: int = 3, exclude_self: bool = True,
               max_evalue: float | None = 10.0) -> dict[str, list[Hit]]:
        names = list(queries)
        if not names:
            return {}
        top = TopK(k)
        with tempfile.TemporaryDirectory(prefix="sepit-search-") as tmp:
            fasta, out = Path(tmp) / "q.fasta", Path(tmp) / "hits.tsv"
            fasta.write_text("".join(f">{i}\n{queries[q].upper()}\n" for i, q in enumerate(names)))
            _run([mmseqs_exe(), "easy-search", str(fasta), str(self.db), str(out), str(Path(tmp) / "work"),
                  "-a", "-s", str(self.sensitivity), "-e", str(max_evalue if max_evalue is not None else 1e6),
                  "--max-seqs", str(max(self.max_seqs, k + 1)), "--gap-open", str(GAP_OPEN), "--gap-extend",
                  str(GAP_EXTEND), "--format-output", MMSEQS_FORMAT, "--threads", str(self.threads),
                  "--db-load-mode", str(self.db_load_mode), "-v", "1"],
                 "easy-search")
            for q, hit in _mmseqs_rows(out):
                name = names[int(q)]
                if not (exclude_self and hit.accession == name):
                    top.add(name, hit)
        return top.result(names)


def _mmseqs_rows(path: Path) -> Iterator[tuple[str, Hit]]:
    """Stream the hit file line by line."""
    with open(path) as fh:
        for line in fh:
            q, t, nident, qlen, tlen, qs, qe, ts, te, evalue, bits = line.rstrip("\n").split("\t")
            qlen_, tlen_ = int(qlen), int(tlen)
            yield q, Hit(t, int(nident) / min(qlen_, tlen_), (int(qe) - int(qs) + 1) / qlen_,
                         (int(te) - int(ts) + 1) / tlen_, float(evalue), float(bits))
