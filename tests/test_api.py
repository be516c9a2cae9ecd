"""The inference path users touch: Sepit.ask / ask_many, option scoring, sepit predict (resumable),
sepit ask (CLI), and the errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

from sepit.api import Sepit
from sepit.cli import main
from sepit.errors import InputFormatError, SepitError
from sepit.eval.generate import GenerationSettings, generate_answers, score_options
from sepit.model.build import save_sepit
from tests.serve.conftest import pdb_text, talkative_tiny_sepit

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("api-model")
    save_sepit(out, *talkative_tiny_sepit(seed=1))
    return out


@pytest.fixture(scope="module")
def sepit(folder):
    return Sepit.from_pretrained(folder, device="cpu")


def _items():
    return [{"sequence": SEQ, "question": "What is the function of this protein?"},
            {"sequence": SEQ[:12], "question": "Where is it?"},
            {"sequence": SEQ[5:], "question": "Does it bind heme?", "choices": ["yes", "no"]}]


def test_batched_greedy_equals_one_at_a_time_and_cache_equals_no_cache(sepit):
    settings = GenerationSettings(max_new_tokens=6)
    batched = generate_answers(sepit.model, sepit.processor, _items(), settings, batch_size=3)
    single = [generate_answers(sepit.model, sepit.processor, [it], settings)[0] for it in _items()]
    assert batched == single and all(batched)
    no_cache = generate_answers(sepit.model, sepit.processor, _items(),
                                GenerationSettings(max_new_tokens=6, use_cache=False), batch_size=3)
    assert no_cache == batched


def test_answers_never_contain_the_prompt(sepit):
    text = generate_answers(sepit.model, sepit.processor, _items()[:1], GenerationSettings(max_new_tokens=8))[0]
    assert "function of this protein" not in text and "<protein" not in text and "user" not in text.split()[:1]


def test_option_scores_are_probabilities_matching_a_manual_likelihood(sepit):
    item = _items()[2]
    probs = score_options(sepit.model, sepit.processor, [item])[0]
    assert set(probs) == {"yes", "no"}
    logps = []
    for option in item["choices"]:
        from sepit.prompts import format_question

        batch = sepit.processor([item["sequence"]], questions=[format_question(item["question"], item["choices"])],
                                answers=[option])
        labels = batch.pop("labels")
        with torch.no_grad():
            logits = sepit.model(**batch).logits[0, :-1]
        target = labels[0, 1:]
        keep = target != -100
        logps.append(torch.log_softmax(logits, -1)[keep].gather(-1, target[keep][:, None]).sum())
    manual = torch.softmax(torch.stack(logps), 0)
    assert probs["yes"] == pytest.approx(float(manual[0]), abs=1e-4)


def test_ask_with_structure_and_choices(sepit, tmp_path):
    pdb = tmp_path / "model.pdb"
    pdb.write_text(pdb_text())
    from tests.serve.conftest import PDB_SEQUENCE

    answer = sepit.ask("Does it bind heme?", sequence=PDB_SEQUENCE, structure=pdb, choices=["yes", "no"],
                       max_new_tokens=4)
    assert answer.choice in ("yes", "no") and answer.structure["residues_with_point"] == len(PDB_SEQUENCE)
    seq_from_structure = sepit.ask("What is it?", structure=pdb, max_new_tokens=3)
    assert seq_from_structure.structure["length"] == len(PDB_SEQUENCE)


@pytest.mark.parametrize("kwargs, match", [
    ({"sequence": "MKT1AY"}, "position"),
    ({"sequence": ""}, "sequence or a structure"),
    ({"sequence": SEQ, "structure": "/nonexistent.pdb"}, "nonexistent"),
])
def test_bad_input_is_named(sepit, kwargs, match):
    with pytest.raises((SepitError, FileNotFoundError, ValueError), match=match):
        sepit.ask("What is it?", max_new_tokens=2, **kwargs)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(InputFormatError, match="not a sepit model folder"):
        Sepit.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "sepit_warmup"}')
    with pytest.raises(InputFormatError, match="not a sepit model"):
        Sepit.from_pretrained(tmp_path)


def test_cli_ask_json_and_fasta(folder, tmp_path, capsys):
    fasta = tmp_path / "p.fasta"
    fasta.write_text(f">sp|P1|X first\n{SEQ}\n>sp|P2|Y second\n{SEQ[:10]}\n")
    rc = main(["ask", "--model", str(folder), "--fasta", str(fasta), "--id", "P2", "--choices", "yes|no",
               "--max-new-tokens", "3", "--json", "Does it bind DNA?"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(out["probabilities"]) == {"yes", "no"} and out["choice"] in ("yes", "no")
    bad = tmp_path / "bad.fasta"
    bad.write_text("MKT\n")
    assert main(["ask", "--model", str(folder), "--fasta", str(bad), "What?"]) == 2
    assert "not a FASTA file" in capsys.readouterr().err


def test_predict_resumes_and_skips_done_items(folder, tmp_path, tiny_store_dir):
    out = tmp_path / "preds.jsonl"
    args = ["predict", "--model", str(folder), "--data", str(tiny_store_dir), "--split", "test", "--out", str(out),
            "--max-items", "6", "--max-new-tokens", "3", "--batch-size", "2"]
    assert main(args) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6 and all(isinstance(r["prediction"], str) for r in rows)
    assert all(r["option_probs"] is None for r in rows if not r["choices"])
    scored = tmp_path / "closed.jsonl"
    assert main([*args[:8], str(scored), "--tasks", "closed", "--max-items", "2", "--max-new-tokens", "2"]) == 0
    closed = [json.loads(x) for x in scored.read_text().splitlines()]
    from sepit.data.store import DatasetStore

    store, model = DatasetStore(tiny_store_dir), Sepit.from_pretrained(folder, device="cpu")
    assert len(closed) == 2
    for r in closed:  # each row scored its own protein and question: the same numbers computed here directly
        p = store.protein(r["accession"])
        item = {"sequence": p.sequence, "coords": p.coords, "plddt": p.plddt, "question": r["question"],
                "choices": r["choices"]}
        expected = score_options(model.model, model.processor, [item])[0]
        assert r["option_probs"] == pytest.approx(expected, abs=1e-4), r["id"]
    # a killed run: the output is still .partial with a torn last line; rerun continues from there
    partial = out.with_name(out.name + ".partial")
    out.rename(partial)
    lines = partial.read_text().splitlines()
    partial.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])
    assert main(args) == 0
    again = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in again] == [r["id"] for r in rows] and not partial.exists()
