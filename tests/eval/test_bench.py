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
