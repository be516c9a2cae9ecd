"""Predictions reading, BERTScore with the real MiniLM, and the report on a tiny run (through the CLI)."""

import json

import pytest

from sepit.cli import main
from sepit.errors import InputFormatError
from sepit.eval.records import read_predictions


def _row(model, id_, task, cat, answer, pred, **kw):
    row = {"id": id_, "accession": "P1", "task": task, "category": cat, "question": "q?", "answer": answer,
           "prediction": pred, "choices": [], "option_probs": None, "model": model}
    row.update(kw)
    return row


def _rows(model, good: bool):
    probs = {"yes": 0.9, "no": 0.1} if good else {"yes": 0.4, "no": 0.6}
    return [
        _row(model, "1", "caption", "function", "Catalyzes the phosphorylation of serine residues.",
             "Catalyzes phosphorylation of serine residues." if good else "A membrane transporter."),
        _row(model, "2", "open", "subcellular_location", "Nucleus.", "Nucleus." if good else "Cytoplasm."),
        _row(model, "3", "closed", "heme", "yes", "Yes." if good else "Maybe",
             choices=["yes", "no"], option_probs=probs),
    ]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_lines_name_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_row("m", "1", "open", "c", "a", "b")) + "\n{not json\n")
    with pytest.raises(InputFormatError, match=r"p\.jsonl:2: not valid JSON"):
        read_predictions([path])
    row = _row("m", "1", "open", "c", "a", "b")
    del row["prediction"]
    _write(path, [row])
    with pytest.raises(InputFormatError, match=r"p\.jsonl:1: missing field\(s\) prediction"):
        read_predictions([path])
    _write(path, [_row("m", "1", "open", "c", "a", "b"), _row("m", "1", "open", "c", "a", "b")])
    with pytest.raises(InputFormatError, match=r"p\.jsonl:2: duplicate id"):
        read_predictions([path])


def test_bertscore_minilm_batched_equals_per_item():
    from sepit.eval.bertscore import BertScore

    scorer = BertScore(batch_size=4)
    hyps = ["The protein binds heme.", "Kinase activity.", "Located in the nucleus."]
    refs = ["The protein binds heme.", "Serine/threonine kinase.", "Secreted into the extracellular space."]
    batched = scorer.score(hyps, refs)["bertscore_f1"]
    single = [scorer.score([h], [r])["bertscore_f1"][0] for h, r in zip(hyps, refs, strict=True)]
    assert batched[0] == pytest.approx(1.0, abs=1e-5)
    assert batched == pytest.approx(single, abs=1e-5)
    assert scorer.num_layers == 6 and scorer.wordpiece("phosphorylation")[0] == "ph"


def test_report_tiny_run(tmp_path, capsys):
    a = _write(tmp_path / "sepit.jsonl", _rows("sepit", True))
    b = _write(tmp_path / "baseline.jsonl", _rows("llm-only", False))
    out = tmp_path / "report"
    assert main(["eval", "--predictions", str(a), str(b), "--out", str(out), "--bertscore-batch-size", "8"]) == 0
    report = (out / "report.md").read_text()
    assert "| sepit |" in report and "| llm-only |" in report
    assert "### subcellular_location" in report and "## Closed-set accuracy per category" in report
    metrics = json.loads((out / "metrics.json").read_text())
    good, bad = metrics["models"]["sepit"], metrics["models"]["llm-only"]
    assert good["closed"]["accuracy"] == 1.0 and bad["closed"]["unparsed"] == 1
    assert good["open"]["rougeL"] > bad["open"]["rougeL"] and good["open"]["bertscore_f1"] > 0.9
    assert good["closed"]["ece"] == pytest.approx(0.1)
    assert good["open_per_category"]["subcellular_location"]["bleu1"] == pytest.approx(1.0)
    for png in ("open_rougeL_per_category.png", "closed_accuracy_per_category.png", "reliability.png"):
        assert (out / png).stat().st_size > 1000
    assert main(["eval", "--predictions", str(a), "--out", str(out), "--no-bertscore"]) == 2  # exists


def test_naive_baseline_and_full_report_on_real_data(tiny_store_dir, tmp_path):
    """`sepit baseline naive` + `sepit eval --data` on a real built dataset: naive row, intervals, identity
    bins (table and plot), ontology tables and the plain statement of where sepit loses."""
    naive = tmp_path / "naive.jsonl"
    assert main(["baseline", "naive", "--data", str(tiny_store_dir), "--out", str(naive)]) == 0
    rows = [json.loads(line) for line in naive.read_text().splitlines()]
    sepit_rows = [{**{k: v for k, v in r.items() if k != "term_scores"}, "model": "sepit",
                   "prediction": "I do not know."} for r in rows]  # a hopeless model
    ours = _write(tmp_path / "sepit.jsonl", sepit_rows)
    out, identity = tmp_path / "report", tmp_path / "identity.json"
    assert main(["eval", "--predictions", str(naive), str(ours), "--out", str(out), "--data", str(tiny_store_dir),
                 "--identity", str(identity), "--no-bertscore", "--no-meteor", "--no-paper-bleu",
                 "--bootstrap", "50"]) == 0
    report = (out / "report.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert identity.is_file() and (out / "metrics_per_identity_bin.png").stat().st_size > 1000
    assert "| naive |" in report and "## Per identity bin" in report and "## Headline numbers" in report
    assert "sepit loses on closed accuracy" in report
    naive_m = metrics["models"]["naive"]
    assert sum(b["n_closed"] + b["n_open"] for b in naive_m["bins"].values()) == len(rows)
    assert len(naive_m["closed"]["accuracy_ci95"]) == 2
    go = metrics["models"]["sepit"].get("ontology", {}).get("go", {})
    for aspect in go.values():  # "I do not know" maps to no GO term: counted, never dropped
        assert aspect["unmapped_predictions"] == aspect["n_items"] and aspect["fmax"] == 0.0
