"""`sepit ask --fasta F QUESTION... --out answers.jsonl`: one row per (protein, question) with choice
probabilities and the structure used, the same answers as one-by-one `Sepit.ask`, resumable, and bad input
named (duplicate FASTA ids, --choices that do not match the questions, proteins over the length limit)."""

from __future__ import annotations

import json

import pytest
from tiny_sepit import pdb_text

from sepit.annotate import annotate, questions_from
from sepit.api import Sepit
from sepit.cli import main
from sepit.data.fasta import read_proteins

PROTEINS = [("sp|P11111|ONE_HUMAN", "GAVLIPFMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"), ("two", "MKTAYIAKQRGAVLIPF"),
            ("three", "MVLSPADKTNVKAAWGKVGAHAGEY")]
OPEN, CLOSED = "What is the function of this protein?", "Does this protein bind DNA?"


def _fasta(tmp_path, records=PROTEINS):
    path = tmp_path / "proteome.fasta"
    path.write_text("".join(f">{rid}\n{seq[:10]}\n{seq[10:]}\n" for rid, seq in records))
    return path


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _ask(sepit_dir, fasta, out, *more):
    return main(["ask", "--model", str(sepit_dir), "--fasta", str(fasta), OPEN, CLOSED, "--choices", "",
                 "--choices", "yes|no", "--out", str(out), "--max-new-tokens", "3", "--batch-size", "2",
                 "--device", "cpu", "--no-progress", *more])


def test_every_pair_answered_like_single_questions(sepit_dir, tmp_path):
    fasta = _fasta(tmp_path)
    structures = tmp_path / "structures"
    structures.mkdir()
    (structures / "two.pdb").write_text(pdb_text(PROTEINS[1][1]))
    out = tmp_path / "answers.jsonl"
    assert _ask(sepit_dir, fasta, out, "--structures", str(structures)) == 0
    rows = {(r["id"], r["question"]): r for r in _rows(out)}
    assert len(rows) == 6 and not (tmp_path / "answers.jsonl.partial").exists()
    closed = rows[("two", CLOSED)]
    assert closed["choices"] == ["yes", "no"] and closed["choice"] in ("yes", "no")
    assert sum(closed["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert closed["structure"]["chain"] == "A" and rows[("three", CLOSED)]["structure"] == {}
    assert rows[("two", OPEN)]["probabilities"] is None and rows[("sp|P11111|ONE_HUMAN", OPEN)]["accession"] == "P11111"
    model = Sepit.from_pretrained(sepit_dir, device="cpu")
    alone = model.ask(CLOSED, sequence=PROTEINS[1][1], structure=structures / "two.pdb", choices=["yes", "no"],
                      max_new_tokens=3)
    assert closed["probabilities"] == pytest.approx(alone.probabilities, abs=1e-4)
    assert rows[("two", CLOSED)]["answer"] == alone.text


def test_resume_keeps_finished_rows_and_answers_only_new_pairs(sepit_dir, tmp_path):
    fasta = _fasta(tmp_path)
    out = tmp_path / "answers.jsonl"
    marker = {"id": "two", "accession": "two", "question": OPEN, "choices": [], "answer": "MARKER", "choice": None,
              "probabilities": None, "structure": {}}
    (tmp_path / "answers.jsonl.partial").write_text(json.dumps(marker) + "\n" + '{"id": "thr')  # torn last line
    assert _ask(sepit_dir, fasta, out) == 0
    rows = _rows(out)
    assert len(rows) == 6 and [r["answer"] for r in rows if r["id"] == "two" and r["question"] == OPEN] == ["MARKER"]
    model = Sepit.from_pretrained(sepit_dir, device="cpu")
    counts = annotate(model, read_proteins(fasta), questions_from([OPEN, "Where is it located?"], None), out,
                      progress=False, max_new_tokens=2)
    assert counts["answered"] == 3 and counts["resumed"] == 6 and len(_rows(out)) == 9


def test_too_long_protein_is_recorded_not_fatal(sepit_dir, tmp_path):
    model = Sepit.from_pretrained(sepit_dir, device="cpu", max_residues=30)
    out = tmp_path / "answers.jsonl"
    counts = annotate(model, read_proteins(_fasta(tmp_path)), questions_from([OPEN], None), out, batch_size=3,
                      progress=False, max_new_tokens=2)
    rows = {r["id"]: r for r in _rows(out)}
    assert counts["errors"] == 1 and "exceed max_residues=30" in rows["sp|P11111|ONE_HUMAN"]["error"]
    assert rows["two"]["answer"] is not None and "error" not in rows["two"]


@pytest.mark.parametrize("records, extra, message", [
    ([("a", "MKV"), ("a", "GAV")], [], "duplicate id 'a'"),
    ([("a", "MKV"), ("b", "")], [], "record b: empty sequence"),
    (PROTEINS, ["--choices", "yes|no"], "give --choices once per question"),
])
def test_bad_input_is_named(sepit_dir, tmp_path, capsys, records, extra, message):
    path = tmp_path / "p.fasta"
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    out = tmp_path / "answers.jsonl"
    assert main(["ask", "--model", str(sepit_dir), "--fasta", str(path), OPEN, CLOSED, "--out", str(out),
                 *extra]) == 2
    assert message in capsys.readouterr().err and not out.exists()
