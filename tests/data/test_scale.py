"""Scale paths: streamed build (batches, processes) equal to a one-batch build, structures read from a tarball
in place (damaged members counted, not fatal), streamed MMseqs2 top-k search, the split's exact sample check."""

from __future__ import annotations

import gzip
import io
import random
import shutil
import tarfile

import numpy as np
import pytest
from test_splits import _family_sequences

from sepit.data.build import BuildConfig, build_dataset
from sepit.data.search import Hit, mmseqs_topk, read_topk
from sepit.data.splits import exact_sample_check, homology_split_report, identities
from sepit.data.store import DatasetStore
from sepit.eval.baselines import Item, nearest_neighbour_predictions

needs_mmseqs = pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")


def _inputs(fixtures, tmp_path):
    tsv = tmp_path / "extra.tsv"
    tsv.write_text("Entry\tSequence\tGene Ontology (molecular function)\n"
                   "P77777\tMKVLAAGHWW\theme binding [GO:0020037]\n"
                   "P77778\tMKVLAAGHWWKK\tATP binding [GO:0005524]\n")
    return [str(fixtures / "mini.dat"), str(tsv)]


def _tables(root):
    store = DatasetStore(root)
    proteins = store.proteins.to_pandas().sort_values("accession").reset_index(drop=True)
    items = store.instructions().to_pandas().sort_values("id").reset_index(drop=True)
    return store, proteins, items


def test_streamed_build_in_batches_and_processes_equals_one_batch(fixtures, tmp_path, monkeypatch):
    import sepit.data.build as build

    parts = []
    real = build.write_store_parts
    monkeypatch.setattr(build, "write_store_parts", lambda out, p, *a: parts.append(len(p)) or real(out, p, *a))
    inputs = _inputs(fixtures, tmp_path)
    one = dict(inputs=inputs, structures=str(fixtures), split="random", progress=False)
    build_dataset(BuildConfig(out=str(tmp_path / "a"), batch_size=1000, threads=1, **one))
    summary = build_dataset(BuildConfig(out=str(tmp_path / "b"), batch_size=1, threads=2, **one))
    store_a, prot_a, items_a = _tables(tmp_path / "a")
    store_b, prot_b, items_b = _tables(tmp_path / "b")
    assert len(prot_a) == 4 and parts == [1, 4]  # one batch, then one part per protein
    assert prot_a.drop(columns=["coords", "plddt"]).equals(prot_b.drop(columns=["coords", "plddt"]))
    assert items_a.equals(items_b) and summary["instructions"] == len(items_a)
    for acc in prot_a["accession"]:
        a, b = store_a.protein(acc), store_b.protein(acc)
        assert (a.coords is None) == (b.coords is None)
        if a.coords is not None:
            np.testing.assert_array_equal(a.coords, b.coords)
    assert summary["structure_coverage"]["with_structure"] == 2


def _tarball(fixtures, tmp_path, corrupt=True):
    """AFDB-style tarball: gzipped members; ``1xyz.pdb.gz`` corrupt when asked."""
    path = tmp_path / "models.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in (("AF-Q00002-F1-model_v4.pdb.gz", gzip.compress((fixtures / "AF-Q00002-F1-model_v4.pdb")
                                                                           .read_bytes())),
                           ("1xyz.pdb.gz", b"not gzip" if corrupt else gzip.compress((fixtures / "1xyz.pdb")
                                                                                     .read_bytes()))):
            info = tarfile.TarInfo(f"swissprot/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_structures_from_tarball_in_place(fixtures, tmp_path):
    inputs = [str(fixtures / "mini.dat")]
    build_dataset(BuildConfig(inputs=inputs, out=str(tmp_path / "dir"), structures=str(fixtures), split="random",
                              progress=False))
    summary = build_dataset(BuildConfig(inputs=inputs, out=str(tmp_path / "tar"), split="random", progress=False,
                                        structures=str(_tarball(fixtures, tmp_path))))
    folder, tar = DatasetStore(tmp_path / "dir"), DatasetStore(tmp_path / "tar")
    np.testing.assert_array_equal(folder.protein("Q00002").coords, tar.protein("Q00002").coords)
    np.testing.assert_array_equal(folder.protein("Q00002").plddt, tar.protein("Q00002").plddt)
    assert tar.protein("Q00002").structure_source == "alphafold:AF-Q00002-F1-model_v4.pdb.gz"
    assert tar.protein("Q00001").coords is None  # its member is corrupt: counted with its name, not fatal
    bad = [e for e in summary["skipped_examples"] if e["kind"] == "structure"]
    assert bad and "1xyz.pdb.gz" in bad[0]["source"] and "corrupt gzip" in bad[0]["reason"]


def test_truncated_tarball_is_counted_not_fatal(fixtures, tmp_path):
    path = _tarball(fixtures, tmp_path, corrupt=False)
    with tarfile.open(path) as tf:
        last = tf.getmembers()[-1]
    data = path.read_bytes()
    path.write_bytes(data[: last.offset_data + last.size // 2])  # cut inside the last member
    summary = build_dataset(BuildConfig(inputs=[str(fixtures / "mini.dat")], out=str(tmp_path / "ds"),
                                        split="random", progress=False, structures=str(path)))
    reasons = [(e["source"], e["reason"]) for e in summary["skipped_examples"] if e["kind"] == "structure"]
    assert any("1xyz.pdb.gz" in src and "truncated" in why for src, why in reasons)
    assert summary["structure_coverage"]["with_structure"] == 1  # the complete member still counts


def test_read_topk_streams_groups_and_keeps_the_best(tmp_path):
    rows = [("q1", "a", 10.0), ("q1", "b", 30.0), ("q1", "c", 20.0), ("q1", "d", 5.0), ("q2", "a", 7.0)]
    hits = tmp_path / "hits.tsv"
    hits.write_text("".join(f"{q}\t{t}\t{b}\t1e-3\t5\t10\t20\n" for q, t, b in rows))
    out = list(read_topk(hits, k=2))
    assert [q for q, _ in out] == ["q1", "q2"]
    assert [h.target for h in out[0][1]] == ["b", "c"] and out[1][1][0] == Hit("q2", "a", 7.0, 1e-3, 5, 10, 20)
    assert out[0][1][0].identity == 0.5


@needs_mmseqs
def test_mmseqs_topk_finds_the_family_like_exhaustive_search():
    seqs = _family_sequences(n_families=5, members=3, length=120)
    found = dict(mmseqs_topk(seqs.items(), seqs.items(), k=3))
    for acc, seq in seqs.items():
        others = [a for a in seqs if a != acc]
        best = max(others, key=lambda a: identities(seq, [seqs[a]])[0])  # exhaustive reference
        top = [h.target for h in found[acc] if h.target != acc]
        assert top and top[0][:2] == best[:2] == acc[:2]  # nearest is of the same family
        assert len(found[acc]) <= 3


@needs_mmseqs
def test_nn_baseline_mmseqs_search_agrees_with_exhaustive():
    seqs = _family_sequences(n_families=4, members=3, length=120)
    train = {a: s for a, s in seqs.items() if not a.endswith("M0")}
    test = {a: s for a, s in seqs.items() if a.endswith("M0")}
    train_items = [Item(f"{a}:0", a, "open", "function", "q?", f"answer of {a[:2]}") for a in train]
    test_items = [Item(f"{a}:0", a, "open", "function", "q?", "") for a in test]
    opal = nearest_neighbour_predictions(train_items, train, test_items, test, search="opal", top_k=2)
    mm = nearest_neighbour_predictions(train_items, train, test_items, test, search="mmseqs", top_k=2)
    assert [r.prediction for r in opal] == [r.prediction for r in mm] == [f"answer of {a[:2]}" for a in test]
    for a, b in zip(opal, mm, strict=True):
        assert abs(a.identity - b.identity) < 0.1  # same definition; MMseqs2's own alignment may differ a little


def test_exact_sample_check_finds_leaks_of_a_bad_split():
    seqs = _family_sequences(n_families=4, members=4)
    bad = {a: ("test" if a.endswith("M0") else "train") for a in seqs}  # every family straddles the split
    report = exact_sample_check(seqs, bad, 0.3, sample=3, seed=0)
    assert report["sampled"] == 3 and report["above_threshold"] == 3 and report["against_training"] == 12
    good = {a: ("test" if a.startswith("F0") else "train") for a in seqs}
    assert exact_sample_check(seqs, good, 0.3, sample=10)["above_threshold"] == 0
    seqs["PEPT"], good["PEPT"] = "SVTP", "train"  # a peptide matching 50-75% of itself anywhere, insignificantly
    assert exact_sample_check(seqs, good, 0.3, sample=10)["above_threshold"] == 0


def test_exact_sample_check_is_capped_by_alignments(monkeypatch):
    import sepit.data.splits as splits

    seqs = _family_sequences(n_families=4, members=4)
    bad = {a: ("test" if a.endswith("M0") else "train") for a in seqs}
    monkeypatch.setattr(splits, "EXACT_CHECK_MAX_ALIGNMENTS", 25)  # 12 training proteins: 2 queries fit
    report = exact_sample_check(seqs, bad, 0.3, sample=4, seed=0)
    assert report["sampled"] == 2 and report["capped_from"] == 4 and report["above_threshold"] == 2
    assert "capped_from" not in exact_sample_check(seqs, bad, 0.3, sample=1, seed=0)


@needs_mmseqs
def test_split_at_scale_reports_clusters_and_the_exact_sample_check(monkeypatch):
    import sepit.data.splits as splits

    monkeypatch.setattr(splits, "EXACT_VERIFY_MAX", 0)  # as for a large set: sample check instead of full
    seqs = _family_sequences(n_families=6, members=4)
    split, report = homology_split_report(seqs, 0.3, (0.5, 0.17, 0.33), seed=1, method="mmseqs", check_sample=5)
    assert report["exact_check"]["sampled"] == 5 and report["exact_check"]["above_threshold"] == 0
    assert report["largest_cluster"] == 4 and report["largest_cluster_share"] == round(4 / 24, 4)
    assert report["search_repairs"]["rounds"] >= 1 and "exact_repairs" not in report
    assert report["search_repairs"]["sensitivity"] == 7.5 and report["search_repairs"]["max_seqs"] == 100
    assert len(report["search_repairs"]["searched_per_round"]) == report["search_repairs"]["rounds"]
    for f in range(6):
        assert len({split[f"F{f}M{m}"] for m in range(4)}) == 1
    monkeypatch.setattr(splits, "SENSITIVE_CHECK_MAX", 10)  # more proteins than this: MMseqs2's default -s
    _, report = homology_split_report(seqs, 0.3, (0.5, 0.17, 0.33), seed=1, method="mmseqs", check_sample=1)
    assert report["search_repairs"]["sensitivity"] == 5.7


def test_training_reads_with_dataloader_workers(tmp_path):
    from sepit.errors import ConfigError
    from sepit.train.config import TrainConfig
    from sepit.train.engine import training_arguments

    cfg = TrainConfig(dataloader_workers=2)
    args = training_arguments(cfg, cfg.stage2.optim, tmp_path)
    assert args.dataloader_num_workers == 2 and args.dataloader_persistent_workers
    assert training_arguments(TrainConfig(), cfg.stage2.optim, tmp_path).dataloader_num_workers == 0
    with pytest.raises(ConfigError, match="dataloader_workers"):
        TrainConfig(dataloader_workers=-1)


@needs_mmseqs
def test_search_check_joins_clusters_that_clustering_left_apart(monkeypatch):
    """Clustering that splits each family in two clusters (M0+M1, M2+M3): the search check of held-out proteins
    finds the links between the halves (to training, and between valid and test), so no family straddles."""
    import sepit.data.splits as splits

    seqs = _family_sequences(n_families=6, members=4)
    halves = [(f"F{f}M{a}", f"F{f}M{a + 1}") for f in range(6) for a in (0, 2)]
    monkeypatch.setattr(splits, "mmseqs_pairs", lambda *args, **kwargs: list(halves))
    monkeypatch.setattr(splits, "EXACT_VERIFY_MAX", 0)
    loose, _ = homology_split_report(seqs, 0.3, (0.5, 0.17, 0.33), seed=1, method="mmseqs", verify=False)
    straddling = [f for f in range(6) if len({loose[f"F{f}M{m}"] for m in range(4)}) > 1]
    assert straddling and all("train" not in {loose[f"F{f}M{m}"] for m in range(4)} for f in straddling)
    split, report = homology_split_report(seqs, 0.3, (0.5, 0.17, 0.33), seed=1, method="mmseqs", check_sample=3)
    assert report["search_repairs"]["pairs_added"] >= 1  # valid ~ test links: held-out on both sides
    for f in range(6):
        assert len({split[f"F{f}M{m}"] for m in range(4)}) == 1


def _crowded_family(members=8, far=0.45, length=120, seed=3):
    """One family: members M0..M{n-2} close to their root (~90%), the last one far from it (``far`` mutated), so
    every close member's best hits are its close siblings; plus unrelated random proteins."""
    rng = random.Random(seed)
    alphabet = "ACDEFGHIKLMNPQRSTVWY"
    root = [rng.choice(alphabet) for _ in range(length)]

    def mutate(rate):
        return "".join(c if rng.random() > rate else rng.choice(alphabet) for c in root)

    seqs = {f"M{m}": mutate(0.1) for m in range(members - 1)}
    seqs[f"M{members - 1}"] = mutate(far)
    seqs.update({f"R{i}": "".join(rng.choice(alphabet) for _ in range(length)) for i in range(6)})
    return seqs


@needs_mmseqs
def test_search_check_leaves_out_the_own_side_so_siblings_cannot_crowd_out_a_crossing_link():
    """Held-out siblings fill a search of all proteins limited to 2 candidates; the check searches each held-out
    side against the other sides only, so every held-out member finds its training relative."""
    from sepit.data.splits import _SearchCheck

    seqs = _crowded_family()
    last = "M7"
    split = {a: ("test" if a.startswith("M") and a != last else "train") for a in seqs}
    crowded = dict(mmseqs_topk(list(seqs.items()), list(seqs.items()), k=3, max_seqs=3, sensitivity=7.5))
    assert all(last not in {h.target for h in crowded[f"M{m}"]} for m in range(7))  # precondition: crowded out
    check = _SearchCheck(seqs, 0.3, threads=1, max_seqs=2)
    try:
        missed = set(check.missed(split))
    finally:
        check.close()
    assert {(f"M{m}", last) for m in range(7)} <= missed
    assert check.log[0]["searched"] == 7 and all(a.startswith("M") for pair in missed for a in pair)


@needs_mmseqs
def test_search_check_searches_again_the_proteins_whose_side_changed():
    """Pairs left out by the first round (both proteins on one side then) are searched once a protein moves: to
    training (against the held-out proteins) or to the other held-out side (against all proteins)."""
    from sepit.data.splits import _SearchCheck

    seqs = _family_sequences(n_families=3, members=4)
    first = {a: ("test" if a.startswith("F0") else "valid" if a.startswith("F1") else "train") for a in seqs}
    check = _SearchCheck(seqs, 0.3, threads=1)
    try:
        round1 = set(check.missed(first))
        assert not any(a.startswith("F0") and b.startswith("F0") for a, b in round1)  # one side: left out
        second = dict(first, F0M1="train", F1M1="test")  # moved: test -> train, valid -> test
        round2 = set(check.missed(second))
    finally:
        check.close()
    assert {("F0M1", "F0M0"), ("F0M1", "F0M2"), ("F1M1", "F1M0")} <= round2
    assert check.log[1]["searched"] == 2  # only the two proteins that moved
    assert all(second[a] != second[b] for a, b in round2)


@needs_mmseqs
def test_mmseqs_clustering_joins_a_fragment_to_its_family_at_the_default_coverage():
    """The split's identity has no coverage term (identical residues / shorter length): a 45-residue fragment of a
    family member joins the family at the default coverage (0) but not when both sequences must be 80% covered."""
    from sepit.data.splits import _components, mmseqs_pairs

    seqs = _family_sequences(n_families=3, members=3, length=150)
    seqs["FRAG"] = seqs["F0M0"][20:65]

    def family_of_fragment(**kwargs):
        comps = _components(list(seqs), mmseqs_pairs(seqs, 0.3, **kwargs))
        return next(sorted(c) for c in comps if "FRAG" in c)

    assert family_of_fragment() == ["F0M0", "F0M1", "F0M2", "FRAG"]
    assert family_of_fragment(coverage=0.8) == ["FRAG"]
