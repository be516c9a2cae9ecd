"""Train/valid/test splits: random, or homology-aware (DESIGN section 3.2).

Homology-aware: proteins are linked when their sequence identity reaches the threshold, and every connected
component (single-linkage cluster) goes to one side, so no test protein reaches the threshold to any
training protein *under the pairs the search found*.

Identity definition (the same everywhere, tests included): identical aligned residues of a local
Smith-Waterman alignment (BLOSUM62, gap open 11, extend 1) divided by the length of the *shorter* sequence
(MMseqs2 ``--seq-id-mode 1``). Normalising by the shorter length (not by alignment length) keeps short,
insignificant local hits from linking unrelated proteins.

Pairs come from MMseqs2 (``mmseqs easy-search``, all against all; fast, but its prefilter and its own
alignments can miss a few pairs) or from an exhaustive in-process search with pyopal (exact, O(n^2): for a few
thousand proteins). After an MMseqs2 search the split is verified exactly: every held-out (valid/test) protein
is aligned with pyopal to every training protein (about 0.16 n^2 alignments), missed pairs join the graph and
the clusters are reassigned, until no held-out protein reaches the threshold to a training protein.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyopal

from sepit.errors import SepitError

SPLITS = ("train", "valid", "test")
GAP_OPEN, GAP_EXTEND = 11, 1


def random_split(accessions: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict[str, str]:
    """Each accession -> train/valid/test at random (deterministic for ``seed``)."""
    return assign_clusters([[a] for a in accessions], fractions, seed)


MAX_VERIFY_ROUNDS = 20
AUTO_OPAL_MAX = 2000  # method "auto": exhaustive pyopal up to this many proteins


def homology_split(sequences: dict[str, str], identity: float = 0.3,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                   method: str = "auto", threads: int = 1, verify: bool = True) -> dict[str, str]:
    """Each accession -> split, whole clusters (identity >= ``identity``) on one side; with a heuristic
    search (MMseqs2) and ``verify``, checked exactly and repaired (module docstring)."""
    method = _resolve_method(method, len(sequences))
    pairs = find_pairs(sequences, identity, method, threads)
    if method == "opal" or not verify:  # exhaustive search: nothing to repair
        return assign_clusters(_components(list(sequences), pairs), fractions, seed)
    for _ in range(MAX_VERIFY_ROUNDS):
        split = assign_clusters(_components(list(sequences), pairs), fractions, seed)
        missed = cross_split_pairs(sequences, split, identity, threads)
        if not missed:
            return split
        pairs = pairs + missed
    raise SepitError(f"homology split: held-out proteins still reach {identity} identity to training proteins "
                     f"after {MAX_VERIFY_ROUNDS} rounds of repair; use --cluster-method opal")


def cross_split_pairs(sequences: dict[str, str], split: dict[str, str], identity: float,
                      threads: int = 1) -> list[tuple[str, str]]:
    """Exact (pyopal) pairs at or above ``identity`` between a held-out protein and a training protein."""
    train = [a for a, side in split.items() if side == "train"]
    train_seqs = [opal_safe(sequences[a]) for a in train]
    pairs = []
    for acc, side in split.items():
        if side != "train" and train_seqs:
            hits = identities(opal_safe(sequences[acc]), train_seqs, threads)
            pairs += [(acc, t) for t, ident in zip(train, hits, strict=True) if ident >= identity]
    return pairs


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


def find_pairs(sequences: dict[str, str], identity: float, method: str, threads: int = 1) -> list[tuple[str, str]]:
    """Pairs at or above ``identity`` found by ``method`` (mmseqs or opal)."""
    if not 0 < identity <= 1:
        raise SepitError(f"identity threshold must be in (0, 1], got {identity}")
    if method == "mmseqs":
        return mmseqs_pairs(sequences, identity, threads)
    return opal_pairs(sequences, identity, threads)


def identities(query: str, targets: list[str], threads: int = 1) -> list[float]:
    """Identity of ``query`` to each target (definition in the module docstring)."""
    results = pyopal.align(query, targets, "BLOSUM62", gap_open=GAP_OPEN, gap_extend=GAP_EXTEND,
                           mode="full", algorithm="sw", threads=threads, ordered=True)
    return [r.alignment.count("M") / min(len(query), len(t)) for r, t in zip(results, targets, strict=True)]


def opal_pairs(sequences: dict[str, str], identity: float, threads: int = 1) -> list[tuple[str, str]]:
    """Exhaustive all-against-all search with pyopal: every pair at or above ``identity``."""
    accs = list(sequences)
    seqs = [opal_safe(sequences[a]) for a in accs]
    pairs = []
    for i in range(len(accs) - 1):
        for j, ident in enumerate(identities(seqs[i], seqs[i + 1:], threads), i + 1):
            if ident >= identity:
                pairs.append((accs[i], accs[j]))
    return pairs


def mmseqs_pairs(sequences: dict[str, str], identity: float, threads: int = 1) -> list[tuple[str, str]]:
    """All-against-all ``mmseqs easy-search`` (sensitivity 7.5); pairs at or above ``identity``."""
    exe = shutil.which("mmseqs")
    if exe is None:
        raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2' or use method opal)")
    with tempfile.TemporaryDirectory(prefix="sepit-mmseqs-") as tmp:
        fasta, hits = Path(tmp) / "seqs.fasta", Path(tmp) / "hits.tsv"
        fasta.write_text("".join(f">{i}\n{s}\n" for i, s in enumerate(sequences.values())))
        cmd = [exe, "easy-search", str(fasta), str(fasta), str(hits), str(Path(tmp) / "work"), "-a", "-s", "7.5",
               "-e", "10", "--max-seqs", "1000", "--gap-open", str(GAP_OPEN), "--gap-extend", str(GAP_EXTEND),
               "--format-output", "query,target,nident,qlen,tlen", "--threads", str(threads), "-v", "1"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SepitError(f"mmseqs easy-search failed: {proc.stderr.strip()[-500:]}")
        accs = list(sequences)
        pairs = []
        for line in hits.read_text().splitlines():
            q, t, nident, qlen, tlen = line.split("\t")
            if q != t and int(nident) / min(int(qlen), int(tlen)) >= identity:
                pairs.append((accs[int(q)], accs[int(t)]))
    return pairs


def opal_safe(seq: str) -> str:
    return "".join(c if c in "ARNDCQEGHILKMFPSTWYVBZX" else "X" for c in seq)


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
