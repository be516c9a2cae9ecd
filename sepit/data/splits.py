"""Train/valid/test splits: random, or homology-aware (DESIGN section 3.2).

Homology-aware: proteins are linked when their sequence identity reaches the threshold, and every connected
component (single-linkage cluster) goes to one side, so no test protein reaches the threshold to any
training protein *under the pairs the search found*.

Identity definition (the same everywhere, tests included): identical aligned residues of a local
Smith-Waterman alignment (BLOSUM62, gap open 11, extend 1) divided by the length of the *shorter* sequence
(MMseqs2 ``--seq-id-mode 1``), counted only for a *significant* alignment: E-value at most ``MAX_EVALUE``
(1e-3, MMseqs2's own default), E = m N 2^-bits with m the shorter length, N the residues of the whole set
searched (for a split: all its proteins) and bits from the raw score with BLAST's Karlin-Altschul constants
for these gap costs. An insignificant alignment has identity 0. Without significance a peptide of a few
residues (or a chance local alignment of a short protein) reaches 30% of its length against almost anything.

Links come from an exhaustive in-process search with pyopal (exact, O(n^2): for a few thousand proteins) or,
at scale, from MMseqs2 clustering (``mmseqs cluster`` at the identity threshold, ``--seq-id-mode 1``, connected
components, ``--cluster-mode 1``; an optional coverage threshold, 0 by default since the identity definition has
none: measured on 10,000 random proteins of a 50,000-protein set, clustering at coverage 0.8 with set cover left
53,075 of their 301,231 links crossing clusters, at coverage 0 with connected components 11,472, with no giant
cluster: largest 309 proteins). MMseqs2 can miss pairs, so with ``verify`` the split is then checked and repaired:

1. held-out (valid/test) proteins are searched with ``mmseqs search`` (-s 7.5 by default) against the proteins
   *not on their own side*, so a protein's own cluster cannot fill its candidate list (``max_seqs``, 100 by
   default); significant pairs at or above the threshold that cross to a training protein (or between valid
   and test) join the graph and the clusters are reassigned, until none is found. In later rounds a protein
   newly on a held-out side, or one whose side has changed since its search, is searched (again), so that no
   held-out/other-side pair stays unexamined (:class:`_SearchCheck`);
2. when it is affordable (at most ``EXACT_VERIFY_MAX`` alignments, a few thousand proteins), every held-out
   protein is aligned exactly with pyopal to every training protein and repaired the same way; otherwise an
   exact check of a random sample of held-out proteins against all training proteins is *reported*
   (:func:`exact_sample_check`: how many reach the threshold), together with the largest cluster's share.

Exact alignments run in two passes: a score-only pass over every pair (SIMD, about twice the speed of a
traceback) and a traceback only for the significant pairs, the few that can count.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyopal

from sepit.data.identity import (  # noqa: F401  (the split's identity definition, re-exported)
    GAP_EXTEND,
    GAP_OPEN,
    MAX_EVALUE,
    _identity_row,
    best_identity,
    evalue_of_bits,
    evalues,
    identities,
    identity_matrix,
    opal_safe,
    total_residues,
)
from sepit.data.search import create_db, mmseqs_topk, run_mmseqs, write_fasta
from sepit.errors import SepitError

SPLITS = ("train", "valid", "test")


def random_split(accessions: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict[str, str]:
    """Each accession -> train/valid/test at random (deterministic for ``seed``)."""
    return assign_clusters([[a] for a in accessions], fractions, seed)


MAX_VERIFY_ROUNDS = 20
AUTO_OPAL_MAX = 2000  # method "auto": exhaustive pyopal up to this many proteins
EXACT_VERIFY_MAX = 2_000_000  # held-out x training alignments: exact full verification up to this many
SEARCH_SENSITIVITY = 7.5  # the search check's MMseqs2 -s up to SENSITIVE_CHECK_MAX proteins ...
SEARCH_SENSITIVITY_LARGE = 5.7  # ... and above (MMseqs2's default; its prefilter about 4x faster at 485k proteins)
SENSITIVE_CHECK_MAX = 100_000
SEARCH_MAX_SEQS = 100  # candidates per query of the search check (proteins on the other sides only)
EXACT_CHECK_MAX_ALIGNMENTS = 20_000_000  # the sample check aligns at most this many pairs (about 4 min, 2 threads)


def homology_split(sequences: dict[str, str], identity: float = 0.3,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                   method: str = "auto", threads: int = 1, verify: bool = True,
                   coverage: float = 0.0) -> dict[str, str]:
    """Each accession -> split, whole clusters (identity >= ``identity``) on one side; with a heuristic
    search (MMseqs2) and ``verify``, checked and repaired (module docstring)."""
    return homology_split_report(sequences, identity, fractions, seed, method, threads, verify, coverage)[0]


def homology_split_report(sequences: dict[str, str], identity: float = 0.3,
                          fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                          method: str = "auto", threads: int = 1, verify: bool = True, coverage: float = 0.0,
                          check_sample: int = 1000, check_sensitivity: float | None = None,
                          check_max_seqs: int = SEARCH_MAX_SEQS) -> tuple[dict[str, str], dict]:
    """:func:`homology_split` and a report: method, clusters, largest cluster's share, repairs and (MMseqs2
    at scale) the exact sample check."""
    method = _resolve_method(method, len(sequences))
    nodes = list(sequences)
    pairs = find_pairs(sequences, identity, method, threads, coverage)
    report: dict = {"method": method}
    split = assign_clusters(_components(nodes, pairs), fractions, seed)
    if method == "mmseqs" and verify:
        if check_sensitivity is None:
            check_sensitivity = (SEARCH_SENSITIVITY if len(sequences) <= SENSITIVE_CHECK_MAX
                                 else SEARCH_SENSITIVITY_LARGE)
        check = _SearchCheck(sequences, identity, threads, check_sensitivity, check_max_seqs)
        try:
            split, pairs, report["search_repairs"] = _repair(nodes, pairs, fractions, seed, check.missed)
        finally:
            check.close()
        report["search_repairs"].update(sensitivity=check_sensitivity, max_seqs=check_max_seqs,
                                        searched_per_round=[r["searched"] for r in check.log],
                                        seconds_per_round=[r["seconds"] for r in check.log])
        held, train = _sides(split)
        if len(held) * len(train) <= EXACT_VERIFY_MAX:
            split, pairs, report["exact_repairs"] = _repair(
                nodes, pairs, fractions, seed, lambda sp: cross_split_pairs(sequences, sp, identity, threads))
        else:
            report["exact_check"] = exact_sample_check(sequences, split, identity, check_sample, seed, threads)
    clusters = _components(nodes, pairs)
    largest = max((len(c) for c in clusters), default=0)
    report.update(clusters=len(clusters), largest_cluster=largest,
                  largest_cluster_share=round(largest / max(1, len(nodes)), 4))
    return split, report


def _repair(nodes: list[str], pairs: list[tuple[str, str]], fractions, seed: int,
            missed_pairs) -> tuple[dict[str, str], list[tuple[str, str]], dict]:
    """Reassign clusters until ``missed_pairs(split)`` finds no held-out/training pair above the threshold."""
    added = 0
    for rounds in range(1, MAX_VERIFY_ROUNDS + 1):
        split = assign_clusters(_components(nodes, pairs), fractions, seed)
        missed = missed_pairs(split)
        if not missed:
            return split, pairs, {"rounds": rounds, "pairs_added": added}
        pairs, added = pairs + missed, added + len(missed)
    raise SepitError(f"homology split: held-out proteins still reach the identity threshold to training proteins"
                     f" after {MAX_VERIFY_ROUNDS} rounds of repair; use --cluster-method opal")


def _sides(split: dict[str, str]) -> tuple[list[str], list[str]]:
    held = [a for a, side in split.items() if side != "train"]
    return held, [a for a, side in split.items() if side == "train"]


class _SearchCheck:
    """MMseqs2 search of held-out proteins for significant links at or above the threshold to proteins on
    another side (module docstring).

    Every held-out protein, not only cluster representatives: measured at 50,000 Swiss-Prot proteins, a check of
    representatives against representatives (13,913) left 1,574 of 10,000 held-out proteins with a training
    protein above the threshold (clustering links members to representatives only, and two proteins >= 30%
    apart often sit in clusters whose representatives are not).

    Each protein is searched against the proteins *not on its own side*, so its own cluster cannot fill its
    ``max_seqs`` candidates: at 485k Swiss-Prot proteins a random protein has about 280 significant links at
    30%, most of them inside its own family, and a crossing link ranked past the candidate limit would be lost.
    A protein is due for a search when it is held-out and was never searched, or when its side has changed
    since its search (training ones included). Then no pair on different sides stays unexamined: if p was on
    its present side when last searched, any q that was on that side too has moved since, and q's later search
    saw p."""

    def __init__(self, sequences: dict[str, str], identity: float, threads: int,
                 sensitivity: float = SEARCH_SENSITIVITY, max_seqs: int = SEARCH_MAX_SEQS):
        self.sequences, self.identity, self.threads = sequences, identity, threads
        self.sensitivity, self.max_seqs = sensitivity, max_seqs
        self.accs = list(sequences)
        self.index = {a: i for i, a in enumerate(self.accs)}
        self.db_residues = total_residues(sequences.values())
        self.links: dict[str, list[str]] = {}
        self.searched_side: dict[str, str] = {}  # the side a protein was on when searched (its search left it out)
        self.log: list[dict] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="sepit-check-")
        self._work = Path(self._tmp.name)
        self._all: Path | None = None
        self._keys: dict[str, str] = {}

    def missed(self, split: dict[str, str]) -> list[tuple[str, str]]:
        """Search the proteins that are due, each against the proteins not on its side; every significant link
        at or above the threshold whose two proteins now sit on different sides."""
        start = time.perf_counter()
        due = [a for a in self.accs if self.searched_side.get(a, "train") != split[a]]
        for side in SPLITS:
            queries = [a for a in due if split[a] == side]
            if queries:
                others = [a for a in self.accs if split[a] != side]
                self._search(queries, self._subset(others, f"not_{side}{len(self.log)}"), side)
        self.log.append({"searched": len(due), "seconds": round(time.perf_counter() - start, 1)})
        return [(a, t) for a, linked in self.links.items() for t in linked if split[t] != split[a]]

    def _search(self, queries: list[str], targets: Path, side: str) -> None:
        for acc in queries:
            self.links[acc], self.searched_side[acc] = [], side
        # MMseqs2's own E-value uses the query's length; ours the shorter one: search loosely, then keep the
        # pairs significant by the split's definition (E from MMseqs2's bit score, N = all proteins' residues)
        hits = mmseqs_topk(((str(self.index[a]), self.sequences[a]) for a in queries), targets, k=self.max_seqs,
                           sensitivity=self.sensitivity, max_seqs=self.max_seqs, evalue=1.0, threads=self.threads)
        for q, rows in hits:
            self.links[self.accs[int(q)]] = [
                self.accs[int(h.target)] for h in rows if h.target != q and h.identity >= self.identity
                and evalue_of_bits(h.bits, min(h.qlen, h.tlen), self.db_residues) <= MAX_EVALUE]

    def _subset(self, accs: list[str], name: str) -> Path:
        """A database of ``accs`` cut from the one of every protein (made once) with ``mmseqs createsubdb``."""
        if self._all is None:
            fasta = self._work / "all.fasta"
            write_fasta(fasta, ((str(i), s) for i, s in enumerate(self.sequences.values())))
            self._all = create_db(fasta, self._work / "all")
            with open(f"{self._all}.lookup") as fh:  # MMseqs2 key of each FASTA id
                self._keys = dict(line.split("\t")[1::-1] for line in fh)
        keys = self._work / f"{name}.keys"
        keys.write_text("".join(f"{self._keys[str(self.index[a])]}\n" for a in accs))
        sub = self._work / name
        run_mmseqs(["createsubdb", str(keys), str(self._all), str(sub)], "createsubdb")
        return sub

    def close(self) -> None:
        self._tmp.cleanup()


def exact_sample_check(sequences: dict[str, str], split: dict[str, str], identity: float, sample: int = 1000,
                       seed: int = 0, threads: int = 1) -> dict:
    """Align a random sample of held-out proteins exactly (pyopal, Smith-Waterman) with every training protein;
    report how many reach ``identity`` to at least one (with up to 5 examples) and the time taken.

    The sample is capped so that at most ``EXACT_CHECK_MAX_ALIGNMENTS`` pairs are aligned (``capped_from``
    says how many were asked for): 1,000 proteins against 388,000 training ones would take over an hour on
    two cores."""
    held, train = _sides(split)
    n = min(sample, len(held))
    if train and n * len(train) > EXACT_CHECK_MAX_ALIGNMENTS:
        n = max(1, EXACT_CHECK_MAX_ALIGNMENTS // len(train))
    picked = sorted(random.Random(seed).sample(sorted(held), n))
    start = time.perf_counter()
    above: list[dict] = []
    if train and picked:
        train_seqs = [opal_safe(sequences[a]) for a in train]
        best, where = best_identity([opal_safe(sequences[a]) for a in picked], train_seqs, threads,
                                    db_residues=total_residues(sequences.values()))
        for acc, b, t in zip(picked, best.tolist(), where.tolist(), strict=True):
            if b >= identity:
                above.append({"accession": acc, "train": train[t], "identity": round(b, 3),
                              "train_length": len(train_seqs[t])})
    report = {"sampled": len(picked), "of_held_out": len(held), "against_training": len(train),
              "above_threshold": len(above), "examples": above[:5], "max_evalue": MAX_EVALUE,
              "seconds": round(time.perf_counter() - start, 1)}
    if len(picked) < min(sample, len(held)):
        report["capped_from"] = sample
    return report


def cross_split_pairs(sequences: dict[str, str], split: dict[str, str], identity: float,
                      threads: int = 1) -> list[tuple[str, str]]:
    """Exact (pyopal, both directions) pairs at or above ``identity`` between a held-out protein and a training
    protein."""
    held, train = _sides(split)
    if not held or not train:
        return []
    matrix = identity_matrix([opal_safe(sequences[a]) for a in held], [opal_safe(sequences[a]) for a in train],
                             threads, db_residues=total_residues(sequences.values()))
    return [(held[i], train[j]) for i, j in zip(*np.nonzero(matrix >= identity), strict=True)]


def assign_clusters(clusters: list[list[str]], fractions: tuple[float, float, float],
                    seed: int) -> dict[str, str]:
    """Shuffle clusters; fill test then valid up to their share of proteins; the rest goes to train.

    The shuffle orders clusters by a hash of (seed, smallest accession), so merging two clusters leaves every
    other cluster's place unchanged (the repair rounds of :func:`homology_split` then converge quickly)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise SepitError(f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    order = sorted(clusters, key=lambda c: hashlib.sha256(f"{seed}:{min(c)}".encode()).hexdigest())
    total = sum(len(c) for c in order)
    targets = {"test": round(fractions[2] * total), "valid": round(fractions[1] * total)}
    filled = {"test": 0, "valid": 0}
    out: dict[str, str] = {}
    for cluster in order:
        side = next((s for s in ("test", "valid") if filled[s] + len(cluster) <= targets[s]), "train")
        if side != "train":
            filled[side] += len(cluster)
        out.update(dict.fromkeys(cluster, side))
    return out


def _resolve_method(method: str, n: int) -> str:
    if method == "auto":
        # measured on 731 real proteins, one thread: exhaustive pyopal 20 s (exact); MMseqs2 20 s + 16 s of
        # verification; pyopal grows as n^2, so MMseqs2 (+ verification) takes over for larger sets
        return "mmseqs" if shutil.which("mmseqs") and n > AUTO_OPAL_MAX else "opal"
    if method not in ("mmseqs", "opal"):
        raise SepitError(f"unknown clustering method {method!r} (auto, mmseqs, opal)")
    return method


def find_pairs(sequences: dict[str, str], identity: float, method: str, threads: int = 1,
               coverage: float = 0.0) -> list[tuple[str, str]]:
    """Links at or above ``identity`` found by ``method``: opal (every pair), mmseqs (cluster links)."""
    if not 0 < identity <= 1:
        raise SepitError(f"identity threshold must be in (0, 1], got {identity}")
    if not 0 <= coverage <= 1:
        raise SepitError(f"coverage threshold must be in [0, 1], got {coverage}")
    if method == "mmseqs":
        return mmseqs_pairs(sequences, identity, threads, coverage)
    return opal_pairs(sequences, identity, threads)


def opal_pairs(sequences: dict[str, str], identity: float, threads: int = 1) -> list[tuple[str, str]]:
    """Exhaustive all-against-all search with pyopal: every pair at or above ``identity`` (both directions)."""
    accs = list(sequences)
    seqs = [opal_safe(sequences[a]) for a in accs]
    if len(seqs) < 2:
        return []
    lens, database, n = np.array([len(s) for s in seqs]), pyopal.Database(seqs), total_residues(seqs)
    forward = np.stack([_identity_row(s, seqs, database, lens, threads, n) for s in seqs])  # [N, N], row = query
    both = np.maximum(forward, forward.T)
    i_idx, j_idx = np.nonzero(np.triu(both >= identity, k=1))
    return [(accs[i], accs[j]) for i, j in zip(i_idx.tolist(), j_idx.tolist(), strict=True)]


def mmseqs_pairs(sequences: dict[str, str], identity: float, threads: int = 1,
                 coverage: float = 0.0) -> list[tuple[str, str]]:
    """``mmseqs cluster`` at ``identity`` (identical residues / shorter length) and ``coverage`` of both
    sequences, clusters as connected components of its alignment graph (``--cluster-mode 1``): (representative,
    member) links, read line by line."""
    accs = list(sequences)
    with tempfile.TemporaryDirectory(prefix="sepit-mmseqs-") as tmp:
        work = Path(tmp)
        write_fasta(work / "seqs.fasta", ((str(i), s) for i, s in enumerate(sequences.values())))
        create_db(work / "seqs.fasta", work / "seqs")
        run_mmseqs(["cluster", str(work / "seqs"), str(work / "clu"), str(work / "tmp"), "--min-seq-id",
                    str(identity), "--seq-id-mode", "1", "-c", str(coverage), "--cov-mode", "0",
                    "--cluster-mode", "1",
                    "--threads", str(threads)], "cluster")
        run_mmseqs(["createtsv", str(work / "seqs"), str(work / "seqs"), str(work / "clu"),
                    str(work / "clu.tsv"), "--threads", str(threads)], "createtsv")
        return [(accs[int(a)], accs[int(b)]) for a, b in _tsv_pairs(work / "clu.tsv") if a != b]


def _tsv_pairs(path: Path) -> Iterator[tuple[str, str]]:
    with open(path) as fh:
        for line in fh:
            a, b = line.split("\t")[:2]
            yield a, b.strip()


def _components(nodes: list[str], pairs: list[tuple[str, str]]) -> list[list[str]]:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())
