"""End-to-end builds: fixtures (mixed flat file + TSV, skips reported, atomic output) and real data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from data_fixtures import SEQ1

from sepit.cli import main
from sepit.data.build import BuildConfig, build_dataset
from sepit.data.go import GeneOntology
from sepit.data.store import DatasetStore
from sepit.data.tsv import parse_tsv
from sepit.resources import default_go_ontology


def _mixed_inputs(fixtures, tmp_path):
    tsv = tmp_path / "extra.tsv"
    tsv.write_text("Entry\tSequence\tGene Ontology (molecular function)\n"
                   "P77777\tMKVLAAGHWW\theme binding [GO:0020037]\n"
                   "P88888\tMKV#L\t\n"  # invalid residue: skipped and counted
                   "Q00001\tMKV\t\n")  # duplicate of the flat file's entry
    return [str(fixtures / "mini.dat"), str(tsv)]


def test_build_mixed_inputs(fixtures, tmp_path):
    out = tmp_path / "ds"
    summary = build_dataset(BuildConfig(inputs=_mixed_inputs(fixtures, tmp_path), out=str(out),
                                        structures=str(fixtures), split="random", progress=False))
    assert summary["proteins"] == 3
    assert summary["structure_coverage"]["with_structure"] == 2
    reasons = " | ".join(summary["skipped"])
    assert "invalid residue" in reasons and "duplicate accession" in reasons
    store = DatasetStore(out)
    q1 = store.protein("Q00001")
    assert q1.structure_source == "pdb:1XYZ:A" and q1.coords.shape == (len(SEQ1), 3)
    assert np.isnan(q1.coords[9]).all() and q1.plddt is None
    assert store.protein("Q00002").plddt is not None and store.protein("P77777").coords is None
    closed = [i for i in store.instructions() if i["task"] == "closed"]  # labels stored for the baselines
    assert closed and all(i["category"] in store.labels(i["accession"]) for i in closed)
    yes = [i for i in closed if i["label"] and i["answer"] == "yes"]
    assert yes and all(i["label"] in store.labels(i["accession"])[i["category"]] for i in yes)
    assert (out / "build.yaml").is_file() and json.loads((out / "summary.json").read_text())["proteins"] == 3


def test_build_is_atomic(fixtures, tmp_path, monkeypatch):
    out = tmp_path / "ds"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    import sepit.data.build as build

    real = build.write_store_parts
    monkeypatch.setattr("sepit.data.build.write_store_parts", boom)
    cfg = BuildConfig(inputs=[str(fixtures / "mini.dat")], out=str(out), structures=str(fixtures), progress=False)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [".ds.partial"]  # finished work only
    monkeypatch.setattr("sepit.data.build.write_store_parts", real)
    summary = build_dataset(cfg)  # the rerun reuses the split and the parsed protein batch
    assert summary["resumed"] == {"split": True, "protein_batches": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ds"] and summary["structure_coverage"]["with_structure"] == 2


def test_interrupted_build_with_other_inputs_starts_over(fixtures, tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sepit.data.build.write_store_parts", boom)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(BuildConfig(inputs=[str(fixtures / "mini.dat")], out=str(tmp_path / "ds"), progress=False))
    monkeypatch.undo()
    summary = build_dataset(BuildConfig(inputs=[str(fixtures / "mini.dat")], out=str(tmp_path / "ds"),
                                        structures=str(fixtures), progress=False))
    assert "starting that work over" in capsys.readouterr().err
    assert summary["resumed"] == {"split": True, "protein_batches": 0}


def test_cli_build_and_inspect(fixtures, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "build", "--input", str(fixtures / "mini.dat"), "--structures", str(fixtures),
                 "--out", str(out), "--split", "random", "--no-progress"]) == 0
    assert "structures: 2/2" in capsys.readouterr().out
    assert main(["data", "inspect", str(out), "--samples", "2"]) == 0
    assert "Q: " in capsys.readouterr().out


def test_cli_bad_input_is_clear(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    assert main(["data", "build", "--input", str(bad), "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "notes.txt: neither a Swiss-Prot flat file" in capsys.readouterr().err


@pytest.mark.slow
def test_real_tsv_with_structure_index(shared_data, tmp_path):
    """The 731 TSV proteins joined with structures/INDEX.tsv (real files, several kinds); GO negatives checked
    against the real GO graph (GO.db, installed by scripts/install.sh)."""
    out = tmp_path / "tsv"
    tsv = shared_data / "uniprot_tsv" / "swissprot2014_go_with_structure.tsv.gz"
    go_path = default_go_ontology()
    assert go_path, "GO.db's GO.sqlite is missing: run scripts/install.sh"
    summary = build_dataset(BuildConfig(
        inputs=[str(tsv)], out=str(out), structures=str(shared_data / "structures"),
        structure_index=str(shared_data / "structures" / "INDEX.tsv"), split="random", progress=False,
        go_ontology=go_path))
    cov = summary["structure_coverage"]
    assert summary["proteins"] == 731 and cov["with_structure"] >= 650, cov
    with open(shared_data / "structures" / "INDEX.tsv") as fh:
        indexed = {r["accession"] for r in csv.DictReader(fh, delimiter="\t")}
    store = DatasetStore(out)
    with_points = [a for a in store.accessions() if store.protein(a).coords is not None]
    assert set(with_points) <= indexed
    entry = store.protein(with_points[0])
    assert entry.coords.shape == (len(entry.sequence), 3)
    assert {"go_mf", "go_bp", "go_cc"} <= {k.split("/")[1] for k in summary["per_category"]}
    go = GeneOntology.load(go_path)
    implied = {r.accession: go.implied_names(t.id for t in r.go) for r in parse_tsv(tsv)}
    negatives = 0
    for item in store.instructions():
        if item["task"] == "closed" and item["category"].startswith("go_"):
            wrong = [item["label"]] if item["answer"] == "no" else []
            wrong += [c for c in item["choices"] if c not in ("yes", "no", item["answer"])]
            assert not {w.lower() for w in wrong} & implied[item["accession"]], item
            negatives += len(wrong)
    assert negatives > 500 and "ancestors" in summary["go_negatives"]


@pytest.mark.slow
def test_real_flatfiles_homology(shared_data, tmp_path):
    """The 200 real flat-file entries, homology split, structures via INDEX.tsv and PDB cross-references."""
    flat = shared_data / "swissprot_flatfiles"
    summary = build_dataset(BuildConfig(
        inputs=[str(flat / "emboss_test_seq.dat.gz"), str(flat / "libswiss_perl_SWISS100.dat.gz")],
        out=str(tmp_path / "flat"), structures=str(shared_data / "structures"),
        structure_index=str(shared_data / "structures" / "INDEX.tsv"), cluster_method="opal", progress=False))
    assert summary["proteins"] == 200 and summary["per_task"]["caption"] == 200
    assert summary["closed_answers"]["yes"] == summary["closed_answers"]["no"]
    assert len([k for k in summary["per_category"] if k.startswith("open/")]) >= 12
    assert summary["structure_coverage"]["with_structure"] >= 3  # only 4 accessions overlap INDEX.tsv


def test_feature_spans_stored_for_feature_centred_crops(shared_data, tiny_store_dir):
    """The build stores each protein's annotated feature spans (0-based, half-open) as its flat file gives them."""
    from sepit.data.uniprot import parse_flatfile

    store = DatasetStore(tiny_store_dir)
    flat = shared_data / "swissprot_flatfiles" / "libswiss_perl_SWISS100.dat.gz"
    with_features = [r for r in parse_flatfile(flat) if r.accession in store and
                     any(f.start is not None and f.end is not None for f in r.features)]
    assert with_features
    for rec in with_features[:10]:
        spans = store.feature_spans(rec.accession)
        positioned = [f for f in rec.features if f.start is not None and f.end is not None]
        assert len(spans) == len({(f.start, f.end) for f in positioned})
        for f in positioned:
            assert (f.start - 1, min(f.end, len(rec.sequence))) in spans
        assert all(0 <= lo < hi <= len(rec.sequence) for lo, hi in spans)
    plain = [a for a in store.accessions() if a not in {r.accession for r in with_features}]
    assert all(store.feature_spans(a) == [] for a in plain)
