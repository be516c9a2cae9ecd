"""`sepit bench deeploc`: unknown labels refused, leakage removed and counted, neighbours copied below the
identity threshold only (constructed sequences, real MMseqs2)."""

import json
import random
import shutil

import pytest

from sepit.cli import main
from sepit.errors import InputFormatError
from sepit.eval.bench import read_deeploc

AA = "ACDEFGHIKLMNPQRSTVWY"


def _seq(rng, n=150):
    return "".join(rng.choice(AA) for _ in range(n))


def _mutate(seq, rng, fraction):
    s = list(seq)
    for pos in rng.sample(range(len(s)), int(fraction * len(s))):
        s[pos] = rng.choice([a for a in AA if a != s[pos]])
    return "".join(s)


def _fasta(path, records):
    path.write_text("".join(f">{acc} {label} test\n{seq}\n" for acc, label, seq in records))
    return path


def test_unknown_label_is_refused(tmp_path):
    path = _fasta(tmp_path / "bad.fasta", [("P1", "Nucleus-U", "MKV"), ("P2", "Moon-S", "MKV")])
    with pytest.raises(InputFormatError, match=r"bad\.fasta:3: unknown DeepLoc location 'Moon'"):
        read_deeploc(path)


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")
def test_leakage_removed_and_counted(tmp_path):
    rng = random.Random(0)
    t1, t2 = _seq(rng), _seq(rng)
    test = _fasta(tmp_path / "test.fasta", [("T1", "Nucleus-U", t1), ("T2", "Plastid-M", t2)])
    ref = _fasta(tmp_path / "ref.fasta", [
        ("T1", "Nucleus-U", t1),  # the benchmark protein itself
        ("H1", "Nucleus-U", _mutate(t1, rng, 0.02)),  # a 98% homolog of T1: removed
        ("N2", "Mitochondrion-M", _mutate(t2, rng, 0.1)),  # 90% to T2, under the 0.95 threshold: copied
        *[(f"C{i}", "Cytoplasm-S", _seq(rng)) for i in range(3)],  # unrelated; the majority class
    ])
    out = tmp_path / "res"
    assert main(["bench", "deeploc", "--test", str(test), "--reference", str(ref), "--identity", "0.95",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    leak = results["leakage"]
    assert (leak["same_accession"], leak["homologs"], leak["kept"]) == (1, 1, 4)
    rows = {(r["model"], r["id"]): r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert rows[("naive", "T1")]["prediction"] == "Cytoplasm"
    assert rows[("nearest-neighbour", "T2")]["prediction"] == "Mitochondrion"
    assert rows[("nearest-neighbour", "T2")]["identity"] == pytest.approx(0.9, abs=0.01)
    assert rows[("nearest-neighbour", "T1")]["identity"] is None  # its homologs are gone: the naive answer
    assert results["models"]["nearest-neighbour"]["accuracy"] == 0.0 and leak["nn_fallback_to_naive"] == 1


def test_unknown_reference_labels_can_be_dropped_and_counted(tmp_path):
    path = _fasta(tmp_path / "ref.fasta", [("P1", "Nucleus-U", "MKV"), ("P2", "Cytoplasm-Nucleus-U", "MKL")])
    dropped = []
    assert [r.accession for r in read_deeploc(path, dropped)] == ["P1"] and dropped == ["P2"]


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")
def test_temporal_holdout_by_hand(tmp_path, monkeypatch):
    """Reference R1 (98% to test T1, removed as a homolog), R2 (80% to T2, kept at threshold 0.9), R3 unrelated;
    T0 is in both releases (not a test protein)."""
    from sepit.data.go import GeneOntology
    from sepit.eval.temporal import temporal_benchmark
    from tests.eval.test_ontology import OBO

    rng = random.Random(1)
    t1, t2, t0 = _seq(rng), _seq(rng), _seq(rng)
    header = ("Entry\tOrganism\tSequence\tGene Ontology (molecular function)\tGene Ontology (biological process)\t"
              "Gene Ontology (cellular component)\n")
    ref = tmp_path / "ref.tsv"
    ref.write_text(header + "".join(f"{a}\t\t{s}\t{mf}\t\t\n" for a, s, mf in [
        ("T0", t0, "x [GO:0000003]"), ("R1", _mutate(t1, rng, 0.02), "alpha gamma binding [GO:0000004]"),
        ("R2", _mutate(t2, rng, 0.2), "alpha binding [GO:0000002]; old [GO:9999999]"),
        ("R3", _seq(rng), "beta activity [GO:0000003]")]))
    test = tmp_path / "test.tsv"
    test.write_text(header + "".join(f"{a}\t\t{s}\t{mf}\t\t\n" for a, s, mf in [
        ("T0", t0, "beta activity [GO:0000003]"), ("T1", t1, "alpha gamma binding [GO:0000004]"),
        ("T2", t2, "alpha binding [GO:0000002]")]))
    obo = tmp_path / "mini.obo"
    obo.write_text(OBO)
    out = temporal_benchmark(ref, test, GeneOntology.load(obo), identity=0.9, bootstrap=0)
    _check_temporal(out)
    # a model's open answers are mapped to GO terms by name: T2 "alpha binding" (right), T1 "beta activity"
    import sepit.eval.temporal as temporal

    texts = {"MF": {"T1": "beta activity", "T2": "[UniProt:R2] alpha binding"}, "BP": {}, "CC": {}}
    seen = {}

    def fake(model, test_raw, test_ids, ref_raw, kept_ids, go, sample, workdir, retrieval):
        seen.update(kept=kept_ids, sample=sample)
        return texts

    monkeypatch.setattr(temporal, "_sepit_answers", fake)
    out = temporal_benchmark(ref, test, GeneOntology.load(obo), identity=0.9, bootstrap=0, model="m",
                             model_sample=2)
    _check_temporal(out)  # the full-set baselines are unchanged
    mf = out["aspects"]["MF"]
    # T1 true {C, A}, predicted {B}: P 0, R 0; T2 true {A}, predicted {A}: P 1, R 1 -> P 1/2, R 1/2, F 0.5
    assert mf["sepit (sample)"]["fmax"] == pytest.approx(0.5) and seen == {"kept": {"T0", "R2", "R3"}, "sample": 2}
    assert mf["naive (sample)"]["fmax"] == pytest.approx(0.6)  # the sample is both test proteins here


def _check_temporal(out: dict) -> None:
    leak = out["leakage"]
    assert (leak["test"], leak["homologs"], leak["test_in_reference"]) == (2, 1, 1)
    mf = out["aspects"]["MF"]
    # naive over the kept reference {T0: B, R2: A, R3: B}: B 2/3, A 1/3. T1 true {C, A}, T2 true {A}.
    # t <= 1/3: {A, B} for both: P (1/2 + 1/2) / 2, R (1/2 + 1) / 2 = 0.75 -> F = 0.6; t > 1/3: {B}: F 0
    assert mf["naive"]["fmax"] == pytest.approx(0.6)
    # nearest neighbour: T2 <- R2 (A at ~0.8): P 1, R (0 + 1) / 2 -> F = 2/3 ; T1 has no remaining hit
    assert mf["nearest-neighbour"]["fmax"] == pytest.approx(2 / 3) and mf["nearest-neighbour"]["coverage"] == 0.5
    assert out["unknown_go_ids"] == {"distinct": 1, "occurrences": 1}


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")
def test_sepit_scored_by_option_likelihood_over_the_classes(tmp_path):
    from sepit.api import Sepit
    from sepit.eval.bench import DEEPLOC_CLASSES, QUESTION, READABLE
    from sepit.model.build import save_sepit
    from tests.model.tiny_sepit import tiny_sepit

    model = save_sepit(tmp_path / "model", *tiny_sepit(seed=0, max_residues=64, on_too_long="truncate"))
    rng = random.Random(1)
    test = _fasta(tmp_path / "test.fasta", [(f"T{i}", "Nucleus-U", _seq(rng, 40 + 20 * i)) for i in range(4)])
    ref = _fasta(tmp_path / "ref.fasta", [(f"R{i}", "Cytoplasm-S", _seq(rng)) for i in range(3)])
    out = tmp_path / "res"
    assert main(["bench", "deeploc", "--test", str(test), "--reference", str(ref), "--out", str(out),
                 "--model", str(model), "--model-sample", "2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {"sepit", "naive (sample)", "nearest-neighbour (sample)"} <= set(results["models"])
    assert results["models"]["sepit"]["n"] == 2 and results["models"]["naive"]["n"] == 4
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r["model"] == "sepit"]
    assert {r["id"] for r in mine} == {r["id"] for r in rows if r["model"] == "naive (sample)"}
    sequences = dict(zip([f"T{i}" for i in range(4)], test.read_text().splitlines()[1::2], strict=True))
    direct = Sepit.from_pretrained(model)
    readable = [READABLE.get(c, c.lower()) for c in DEEPLOC_CLASSES]
    for r in mine:
        assert set(r["option_probs"]) == set(DEEPLOC_CLASSES)
        assert r["prediction"] == max(r["option_probs"], key=r["option_probs"].get)
        want = direct.ask(QUESTION, sequences[r["id"]][:64], choices=readable).probabilities
        for cls, name in zip(DEEPLOC_CLASSES, readable, strict=True):
            assert r["option_probs"][cls] == pytest.approx(want[name], abs=1e-5)
        assert r["cropped"] == (len(sequences[r["id"]]) > 64)


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not installed")
def test_sepit_go_answers_with_evidence_from_the_reference(tmp_path):
    """A tiny model answers the three GO questions per protein; with a retrieval.json beside its weights the
    evidence comes from the reference given (indexed in the work folder), never from elsewhere."""
    from sepit.eval.temporal import sepit_go_answers
    from sepit.model.build import save_sepit
    from tests.model.tiny_sepit import tiny_sepit

    model = save_sepit(tmp_path / "model", *tiny_sepit(seed=0, max_residues=64, on_too_long="truncate"))
    (model / "retrieval.json").write_text(json.dumps({"trained_with_retrieval": True, "top_k": 2,
                                                      "annotation_chars": 80, "max_evalue": 10.0}))
    rng = random.Random(3)
    base = _seq(rng)
    reference = {"R1": (_mutate(base, rng, 0.1), {"go_mf": ["alpha binding"]}), "R2": (_seq(rng), {})}
    answers = sepit_go_answers(model, {"T1": base, "T2": _seq(rng)}, reference, tmp_path / "work",
                               max_new_tokens=4)
    assert set(answers) == {"MF", "BP", "CC"} and all(set(a) == {"T1", "T2"} for a in answers.values())
    rows = [json.loads(line) for line in (tmp_path / "work" / "sepit_go.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["category"] for r in rows} == {"go_mf", "go_bp", "go_cc"}
    t1_mf = next(r for r in rows if r["id"] == "T1:MF")
    assert [e["accession"] for e in t1_mf["evidence"]][:1] == ["R1"] and "alpha binding" in t1_mf["evidence"][0][
        "annotation"]
    assert all({e["accession"] for e in r["evidence"]} <= {"R1", "R2"} for r in rows)
