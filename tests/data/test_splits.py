"""Splits: whole clusters on one side; no test protein at/above the threshold to any training protein."""

from __future__ import annotations

import functools
import math
import random
import shutil

import numpy as np
import pytest
from Bio.Align import PairwiseAligner, substitution_matrices

from sepit.data.splits import homology_split, identities, random_split
from sepit.data.uniprot import parse_flatfile


def _family_sequences(n_families=6, members=4, length=80, seed=0):
    """Random families: members are mutated copies (about 85% identity); families unrelated."""
    rng = random.Random(seed)
    alphabet = "ACDEFGHIKLMNPQRSTVWY"
    seqs = {}
    for f in range(n_families):
        root = [rng.choice(alphabet) for _ in range(length)]
        for m in range(members):
            seqs[f"F{f}M{m}"] = "".join(c if rng.random() > 0.15 else rng.choice(alphabet) for c in root)
    return seqs


@functools.cache
def _aligner() -> PairwiseAligner:
    """Smith-Waterman, BLOSUM62, gap open 11 / extend 1 in BLAST's convention (a gap of k costs 11 + k)."""
    return PairwiseAligner(mode="local", substitution_matrix=substitution_matrices.load("BLOSUM62"),
                           open_gap_score=-12, extend_gap_score=-1)


def reference_identity(a: str, b: str, db_residues: int) -> float:
    """Identity by Biopython, independent of sepit's pyopal path: identical aligned residues of the best local
    alignment over the shorter length, 0 unless the alignment is significant: E = m N 2^-bits <= 1e-3 with
    m the shorter length, N = ``db_residues``, bits = (0.267 S - ln 0.041) / ln 2 (the definition in
    sepit.data.splits)."""
    aln = _aligner().align(a, b)[0]
    bits = (0.267 * aln.score - math.log(0.041)) / math.log(2)
    if min(len(a), len(b)) * db_residues * 2.0 ** -bits > 1e-3:
        return 0.0
    return aln.counts().identities / min(len(a), len(b))


def _nearest_by_kmers(query: str, targets: list[str], top: int, k: int = 3) -> list[str]:
    """The ``top`` targets sharing the most ``k``-mers with ``query`` (over the shorter set): an independent,
    cheap prefilter for large sets, where aligning every pair with Biopython would take too long."""
    q = {query[i:i + k] for i in range(len(query) - k + 1)}

    def shared(t: str) -> float:
        kmers = {t[i:i + k] for i in range(len(t) - k + 1)}
        return len(q & kmers) / max(1, min(len(q), len(kmers)))

    return sorted(targets, key=shared, reverse=True)[:top]


def _check(seqs, split, threshold, top: int | None = None):
    """Every valid and test protein stays below the threshold to every training protein (Biopython identity;
    with ``top``, to its ``top`` nearest training proteins by shared 3-mers)."""
    train = [seqs[a] for a, s in split.items() if s == "train"]
    held_out = [a for a, s in split.items() if s != "train"]
    n = sum(len(x) for x in seqs.values())
    assert train and held_out
    for acc in held_out:
        targets = train if top is None else _nearest_by_kmers(seqs[acc], train, top)
        assert max(reference_identity(seqs[acc], t, n) for t in targets) < threshold, (acc, split[acc])


def test_homology_split_keeps_families_together():
    seqs = _family_sequences()
    split = homology_split(seqs, identity=0.3, fractions=(0.5, 0.17, 0.33), seed=1, method="opal")
    for f in range(6):
        assert len({split[f"F{f}M{m}"] for m in range(4)}) == 1
    assert set(split.values()) == {"train", "valid", "test"}
    _check(seqs, split, 0.3)


def test_reference_identity_separates_families_and_agrees_with_sepit():
    """The independent identity can fail the split check: family members are far above 0.3, and sepit's own
    identities agree with it on every pair of the toy families."""
    seqs = _family_sequences(n_families=3, members=2)
    names, n = sorted(seqs), sum(len(x) for x in seqs.values())
    for i, a in enumerate(names):
        ours = identities(seqs[a], [seqs[b] for b in names[i + 1:]], db_residues=n)
        for b, got in zip(names[i + 1:], ours, strict=True):
            ref = reference_identity(seqs[a], seqs[b], n)
            assert ref > 0.6 if a[:2] == b[:2] else ref < 0.3, (a, b, ref)
            assert got == pytest.approx(ref, abs=0.05), (a, b)


def test_homology_split_real_proteins(shared_data):
    path = shared_data / "swissprot_flatfiles" / "libswiss_perl_SWISS100.dat.gz"
    seqs = {r.accession: r.sequence for r in parse_flatfile(path)}
    split = homology_split(seqs, identity=0.3, seed=0, method="opal")
    assert "test" in split.values()
    _check(seqs, split, 0.3, top=10)


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")
def test_mmseqs_method_keeps_families_together():
    seqs = _family_sequences(n_families=4, members=3)
    split = homology_split(seqs, identity=0.3, fractions=(0.5, 0.25, 0.25), seed=0, method="mmseqs")
    for f in range(4):
        assert len({split[f"F{f}M{m}"] for m in range(3)}) == 1
    _check(seqs, split, 0.3)


def test_random_split_fractions_and_seed():
    accs = [f"P{i}" for i in range(100)]
    split = random_split(accs, (0.8, 0.1, 0.1), seed=0)
    assert sorted(split) == sorted(accs) and list(split.values()).count("test") == 10
    assert split == random_split(accs, (0.8, 0.1, 0.1), seed=0) != random_split(accs, (0.8, 0.1, 0.1), seed=1)


def test_missed_pairs_are_repaired_by_exact_verification(monkeypatch):
    """A heuristic search that finds no pair at all: without verification families straddle the split; with
    it (the default after MMseqs2) every held-out protein stays below the threshold to every training one."""
    import sepit.data.splits as splits

    seqs = _family_sequences()
    monkeypatch.setattr(splits, "mmseqs_pairs", lambda *args, **kwargs: [])
    loose = homology_split(seqs, identity=0.3, fractions=(0.5, 0.17, 0.33), seed=1, method="mmseqs", verify=False)
    with pytest.raises(AssertionError):
        _check(seqs, loose, 0.3)
    split = homology_split(seqs, identity=0.3, fractions=(0.5, 0.17, 0.33), seed=1, method="mmseqs")
    _check(seqs, split, 0.3)
    assert set(split.values()) == {"train", "valid", "test"}


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs2 not installed")
def test_real_proteins_with_mmseqs_are_verified(shared_data):
    """731 real proteins: MMseqs2 alone lets held-out proteins reach 30% to a training protein (21 pairs in
    the first round here); after verification none does."""
    from sepit.data.tsv import parse_tsv

    path = shared_data / "uniprot_tsv" / "swissprot2014_go_with_structure.tsv.gz"
    seqs = {r.accession: r.sequence for r in parse_tsv(path)}
    split = homology_split(seqs, identity=0.3, seed=0, method="mmseqs")
    assert list(split.values()).count("test") >= 0.08 * len(seqs)
    _check(seqs, split, 0.3, top=3)


def test_identity_is_symmetric_where_smith_waterman_ties(shared_data, monkeypatch):
    """A 60-residue protein and a 1,166-residue one whose best local alignments tie in score: pyopal's traceback
    gives 0.317 identity with the short one as query and 0.117 the other way. The split's identity is the
    larger, whichever side the proteins are on. The alignment is a chance one (raw score 28, 15 bits): shown
    with significance switched off; with it, neither order links the pair."""
    import gzip

    import sepit.data.identity as identity_module
    from sepit.data.splits import cross_split_pairs, identity_matrix, opal_pairs, opal_safe

    with gzip.open(shared_data / "uniprot_tsv" / "swissprot2014_go_with_structure.tsv.gz", "rt") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows = (dict(zip(header, line.rstrip("\n").split("\t"), strict=True)) for line in fh)
        seqs = {r["Entry"]: opal_safe(r["Sequence"]) for r in rows if r["Entry"] in ("Q97ZE3", "P23477")}
    short, long = seqs["Q97ZE3"], seqs["P23477"]

    def links() -> list[int]:
        found = [len(opal_pairs(order, 0.3)) for order in (seqs, dict(reversed(seqs.items())))]
        for held in seqs:
            found.append(len(cross_split_pairs(seqs, {a: ("test" if a == held else "train") for a in seqs}, 0.3)))
        return found

    assert identity_matrix([short], [long])[0, 0] == identity_matrix([long], [short])[0, 0] == 0.0
    assert links() == [0, 0, 0, 0]
    monkeypatch.setattr(identity_module, "MAX_EVALUE", float("inf"))  # significance off
    one_way, other_way = identities(short, [long])[0], identities(long, [short])[0]
    assert one_way >= 0.3 > other_way  # the tie this test is about (pyopal's traceback)
    both = identity_matrix([short], [long])[0, 0]
    assert both == identity_matrix([long], [short])[0, 0] == max(one_way, other_way)
    assert links() == [1, 1, 1, 1]


def test_insignificant_alignments_do_not_link():
    """A 4-residue peptide with 3 residues of a protein reaches 75% of the shorter length, but such an alignment
    is not significant: its identity is 0 and it links nothing; family members still link."""
    from sepit.data.splits import opal_pairs

    seqs = _family_sequences(n_families=2, members=2)
    pep = seqs["F0M0"][10:13] + ("W" if seqs["F0M0"][13] != "W" else "Y")  # 3 of 4 residues from F0M0
    seqs["PEPT"] = pep
    n = sum(len(x) for x in seqs.values())
    raw = _aligner().align(pep, seqs["F0M0"])[0].counts().identities / 4
    assert raw >= 0.75  # what identity without significance would say
    assert identities(pep, [seqs["F0M0"], seqs["F1M0"]], db_residues=n) == [0.0, 0.0]
    pairs = {frozenset(p) for p in opal_pairs(seqs, 0.3)}
    assert pairs == {frozenset(("F0M0", "F0M1")), frozenset(("F1M0", "F1M1"))}


def test_evalue_by_hand():
    """E = m N 2^-bits, bits = (0.267 S - ln 0.041) / ln 2: S = 100 gives 43.13 bits."""
    from sepit.data.splits import evalues

    bits = (26.7 - math.log(0.041)) / math.log(2)
    assert bits == pytest.approx(43.13, abs=0.01)
    got = evalues(np.array([100.0, 50.0]), np.array([300, 30]), 10**8)
    assert got[0] == pytest.approx(300 * 1e8 * 2 ** -bits, rel=1e-9) and got[0] < 1e-2
    assert got[1] == pytest.approx(30 * 1e8 * 2 ** -((13.35 - math.log(0.041)) / math.log(2)), rel=1e-9)
