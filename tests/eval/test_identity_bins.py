"""Identity bins: the split's identity definition, stored once per dataset, metrics per bin."""

import json
import random

import pytest

from sepit.errors import InputFormatError
from sepit.eval import identity_bins
from sepit.eval.metrics import EvalConfig, Scorers, evaluate
from sepit.eval.records import Prediction


def test_bin_edges():
    assert [identity_bins.bin_of(x) for x in (0.0, 0.299, 0.3, 0.5, 0.7, 0.9, 1.0)] == [
        "<30%", "<30%", "30-50%", "50-70%", "70-90%", ">=90%", ">=90%"]
    with pytest.raises(ValueError):
        identity_bins.bin_of(-0.1)


def test_highest_identity_uses_the_split_definition():
    rng = random.Random(0)
    ref = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(100))
    mutated = list(ref)
    for pos in range(10, 90, 4):  # 20 substitutions inside: 80 identical of 100
        mutated[pos] = "W" if ref[pos] != "W" else "C"
    out = identity_bins.highest_identity({"same": ref, "mut": "".join(mutated), "short": ref[20:60]},
                                         {"r1": ref, "r2": "G" * 50})
    assert out["same"] == pytest.approx(1.0) and out["short"] == pytest.approx(1.0)  # over the shorter length
    assert out["mut"] == pytest.approx(0.8)


def test_computed_once_and_stored(tiny_store_dir, tmp_path, monkeypatch):
    path = tmp_path / "identity.json"
    first = identity_bins.load_or_compute(tiny_store_dir, path)
    record = json.loads(path.read_text())
    assert record["reference_split"] == "train" and set(first) == set(record["identity"])
    assert first and all(0.0 <= v <= 1.0 for v in first.values())
    monkeypatch.setattr(identity_bins, "compute", lambda *a, **k: pytest.fail("recomputed"))
    assert identity_bins.load_or_compute(tiny_store_dir, path) == first
    path.write_text("{}")
    with pytest.raises(InputFormatError, match="not an identity file"):
        identity_bins.read(path)


def test_metrics_per_bin_with_counts():
    rows = [Prediction(id=f"{acc}{i}", accession=acc, task="closed", category="c", question="q?", answer="yes",
                       prediction=pred, model="m", choices=("yes", "no"))
            for i, (acc, pred) in enumerate([("A", "yes"), ("A", "no"), ("B", "yes"), ("C", "yes")])]
    identity = {"A": 0.12, "B": 0.95}  # C unknown
    out = evaluate(rows, Scorers(EvalConfig(bertscore=False, meteor=False, paper_bleu=False)), identity=identity)
    bins = out["models"]["m"]["bins"]
    assert set(bins) == {"<30%", ">=90%", "unknown"}
    assert bins["<30%"]["n_closed"] == 2 and bins["<30%"]["closed"]["accuracy"] == pytest.approx(0.5)
    assert bins[">=90%"]["n_proteins"] == 1 and bins[">=90%"]["closed"]["accuracy"] == 1.0
    assert bins["unknown"]["n_closed"] == 1
    ci = out["models"]["m"]["closed"]["accuracy_ci95"]  # Wilson, 3 of 4
    assert ci == pytest.approx([0.3006, 0.9544], abs=1e-3)
