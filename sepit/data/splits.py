"""Train/valid/test splits: random, or homology-aware (DESIGN section 3.2).

Homology-aware: proteins are linked when their sequence identity reaches the threshold, and every connected
component (single-linkage cluster) goes to one side, so no test protein reaches the threshold to any
training protein *under the pairs the search found*.

Identity definition (the same everywhere, tests included): identical aligned residues of a local
Smith-Waterman alignment (BLOSUM62, gap open 11, extend 1) divided by the length of the *shorter* sequence
(MMseqs2 ``--seq-id-mode 1``). Normalising by the shorter length (not by alignment length) keeps short,
insignificant local hits from linking unrelated proteins.

Pairs come from MMseqs2 (``mmseqs easy-search``, all against all; fast, but its prefilter can miss a few
pairs) or from an exhaustive in-process search with pyopal (exact, O(n^2): for a few thousand proteins).
"""

from __future__ import annotations

import random
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


def homology_split(sequences: dict[str, str], identity: float = 0.3,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                   method: str = "auto", threads: int = 1) -> dict[str, str]:
    """Each accession -> split, whole clusters (identity >= ``identity``) on one side."""
    clusters = cluster_sequences(sequences, identity, method, threads)
    return assign_clusters(clusters, fractions, seed)


def assign_clusters(clusters: list[list[str]], fractions: tuple[float, float, float],
                    seed: int) -> dict[str, str]:
    """Shuffle clusters; fill test then valid up to their share of proteins; the rest goes to train."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise SepitError(f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    order = sorted(clusters, key=lambda c: sorted(c)[0])
    random.Random(seed).shuffle(order)
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


def cluster_sequences(sequences: dict[str, str], identity: float, method: str = "auto",
                      threads: int = 1) -> list[list[str]]:
    """Single-linkage clusters (connected components of the identity >= ``identity`` graph)."""
    if not 0 < identity <= 1:
        raise SepitError(f"identity threshold must be in (0, 1], got {identity}")
    if method == "auto":
        method = "mmseqs" if shutil.which("mmseqs") and len(sequences) > 500 else "opal"
    if method == "mmseqs":
        pairs = mmseqs_pairs(sequences, identity, threads)
    elif method == "opal":
        pairs = opal_pairs(sequences, identity, threads)
    else:
        raise SepitError(f"unknown clustering method {method!r} (auto, mmseqs, opal)")
    return _components(list(sequences), pairs)


def identities(query: str, targets: list[str], threads: int = 1) -> list[float]:
    """Identity of ``query`` to each target (definition in the module docstring)."""
    results = pyopal.align(query, targets, "BLOSUM62", gap_open=GAP_OPEN, gap_extend=GAP_EXTEND,
                           mode="full", algorithm="sw", threads=threads, ordered=True)
    return [r.alignment.count("M") / min(len(query), len(t)) for r, t in zip(results, targets, strict=True)]


def opal_pairs(sequences: dict[str, str], identity: float, threads: int = 1) -> list[tuple[str, str]]:
    """Exhaustive all-against-all search with pyopal: every pair at or above ``identity``."""
    accs = list(sequences)
    seqs = [_opal_safe(sequences[a]) for a in accs]
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


def _opal_safe(seq: str) -> str:
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
