"""Training and answering with retrieval, end to end on the debug preset and 100 real Swiss-Prot entries:
the training prompts hold evidence from the training split only (never the protein itself), the configured
shares see only below-cap neighbours or none, answers cite, predict/ask rows carry checked evidence."""

from __future__ import annotations

import json

import pytest

from sepit.api import Sepit
from sepit.errors import ConfigError
from sepit.prompts import NO_HITS
from sepit.retrieval.config import RetrievalSpec
from sepit.retrieval.evidence import Evidence, Retriever
from sepit.retrieval.index import ReferenceIndex
from sepit.retrieval.search import Hit
from sepit.retrieval.training import TrainingContext, citing_hit
from sepit.train.config import load_train_config
from sepit.train.run import train_stage
from tests.train.conftest import debug_overrides


class _Index:
    def __init__(self, accessions):
        from sepit.retrieval.index import Entry

        self.entries = {a: Entry(a, "M", {"function": f"binds ligand{a}"}) for a in accessions}


def test_shares_cap_and_citations_are_deterministic():
    hits = [Hit("N1", 0.9, 1, 1, 1e-30, 100), Hit("N2", 0.5, 1, 1, 1e-10, 50), Hit("N3", 0.2, 1, 1, 1e-3, 20),
            Hit("N4", 0.1, 1, 1, 1e-2, 18)]
    spec = RetrievalSpec(enabled=True, top_k=2, below_cap_share=0.4, no_context_share=0.2)
    ctx = TrainingContext(_Index(["N1", "N2", "N3", "N4"]), {"P": hits}, spec, identity_cap=0.3)
    kinds = {"none": 0, "capped": 0, "top": 0}
    for i in range(400):
        row = {"id": str(i), "accession": "P", "task": "open", "category": "function", "answer": "binds ligandN3"}
        chosen = [h.accession for h in ctx.hits(row)]
        kinds["none" if not chosen else "capped" if chosen == ["N3", "N4"] else "top"] += 1
        assert chosen in ([], ["N3", "N4"], ["N1", "N2"]) and ctx.hits(row) == ctx.hits(row)
        context, citation = ctx(row)
        assert (context == NO_HITS) == (not chosen)
        assert citation == ("[UniProt:N3]" if "N3" in chosen else "")  # N1's "binds ligandN1": overlap 0.5
    assert 0.13 < kinds["none"] / 400 < 0.27 and 0.33 < kinds["capped"] / 400 < 0.47
    ev = [Evidence("A", 0.4, 1, 1, 1e-5, 30, "DNA binding; transcription")]
    assert citing_hit({"task": "closed", "answer": "yes"}, ev, 0.5) is None
    assert citing_hit({"task": "open", "answer": "transcription, DNA binding"}, ev, 0.5) == "A"
    # a long caption that contains the hit's annotation rests on it; sharing one common word is not enough
    caption = "Binds DNA and activates transcription of stress genes in the nucleus. Belongs to the bZIP family."
    ev2 = [Evidence("B", 0.3, 1, 1, 1e-5, 30, "function: Controls cell size; location: Cytoplasm"), *ev]
    assert citing_hit({"task": "caption", "answer": caption}, ev2, 0.6) == "A"
    assert citing_hit({"task": "caption", "answer": "Controls the nucleus."}, ev2, 0.6) is None
    with pytest.raises(ConfigError, match="shares"):
        RetrievalSpec(below_cap_share=0.8, no_context_share=0.5)


@pytest.fixture(scope="module")
def retrieval_run(tiny_store_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("retrieval-run")
    cfg = load_train_config("debug", debug_overrides(tiny_store_dir, out, "retrieval.enabled=true",
                                                     "retrieval.method=opal", "stage1.data.max_items=4",
                                                     "stage2.data.max_items=4"))
    stage1 = train_stage(cfg, 1, init_from="none")
    stage2 = train_stage(cfg, 2)
    return cfg, out, stage1, stage2


def test_training_prompts_hold_training_neighbours_only(retrieval_run, tiny_store_dir):
    from sepit.data.store import DatasetStore

    cfg, out, stage1, stage2 = retrieval_run
    store = DatasetStore(tiny_store_dir)
    train = set(store.instructions("train")["accession"])
    neighbours = json.loads((out / "neighbours.json").read_text())["hits"]
    assert neighbours and set(neighbours) <= train
    for acc, hits in neighbours.items():
        assert acc not in {h["accession"] for h in hits} and {h["accession"] for h in hits} <= train
    for folder in (stage1, stage2):
        saved = json.loads((folder / "retrieval.json").read_text())
        assert saved["trained_with_retrieval"] and saved["top_k"] == 3


def test_predict_and_ask_with_and_without_retrieval(retrieval_run, tiny_store_dir, tmp_path, capsys):
    from sepit.cli import main

    cfg, out, _, stage2 = retrieval_run
    preds = tmp_path / "preds.jsonl"
    assert main(["predict", "--model", str(stage2), "--data", str(tiny_store_dir), "--split", "test",
                 "--out", str(preds), "--max-items", "4", "--index", str(out / "index"),
                 "--max-new-tokens", "8", "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert isinstance(row["evidence"], list) and row["accession"] not in {e["accession"] for e in row["evidence"]}
        shown = {e["accession"] for e in row["evidence"]}
        assert set(row["citations"]) <= shown and not set(row["unsupported_citations"]) & shown
        for e in row["evidence"]:
            assert e["url"] == f"https://www.uniprot.org/uniprotkb/{e['accession']}/entry" and e["annotation"]
    closed = tmp_path / "closed.jsonl"  # closed-set: answered by option scores mixed with the evidence's vote
    assert main(["predict", "--model", str(stage2), "--data", str(tiny_store_dir), "--split", "test",
                 "--out", str(closed), "--max-items", "2", "--tasks", "closed", "--index", str(out / "index"),
                 "--vote-weight", "0.5", "--device", "cpu"]) == 0
    for row in map(json.loads, closed.read_text().splitlines()):
        assert row["model_option_probs"].keys() == row["option_probs"].keys() == set(row["choices"])
        chosen = max(row["option_probs"], key=row["option_probs"].get)
        shown = {e["accession"] for e in row["evidence"]}
        assert row["prediction"].split(" [UniProt:")[0] == chosen and set(row["citations"]) <= shown
        vote = row["evidence_option_probs"]
        if vote is not None:  # the answer's probabilities are the halfway mix of the model's and the vote's
            assert all(abs(row["option_probs"][c] - (row["model_option_probs"][c] + vote[c]) / 2) < 1e-5
                       for c in row["choices"])
    plain = tmp_path / "plain.jsonl"
    assert main(["predict", "--model", str(stage2), "--data", str(tiny_store_dir), "--split", "test",
                 "--out", str(plain), "--max-items", "2", "--index", str(out / "index"), "--no-retrieval",
                 "--max-new-tokens", "4", "--device", "cpu"]) == 0
    assert all("evidence" not in json.loads(line) for line in plain.read_text().splitlines())
    model = Sepit.from_pretrained(stage2, device="cpu", index=out / "index")
    sequence = next(iter(model.retriever.index.entries.values())).sequence
    answer = model.ask("Does it bind heme?", sequence=sequence, choices=["yes", "no"], max_new_tokens=4)
    assert answer.evidence and answer.evidence[0].identity == 1.0 and answer.probabilities
    d = answer.to_dict()
    assert d["evidence"][0]["accession"] == answer.evidence[0].accession and "citations" in d
    strict = Retriever(model.retriever.index, max_evalue=1e-6)
    none = model.ask("What does it do?", sequence="W" * 12, index=strict, max_new_tokens=4)
    assert none.evidence == [] and none.to_dict()["evidence"] == [] and "evidence_note" in none.to_dict()
    assert model.ask("What does it do?", sequence=sequence, index=False, max_new_tokens=4).evidence is None
    capsys.readouterr()
    assert main(["ask", "--model", str(stage2), "--index", str(out / "index"), "--sequence", sequence, "--json",
                 "--max-new-tokens", "4", "--device", "cpu", "--category", "function", "What does it do?"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["evidence"][0]["identity"] == 1.0 and shown["evidence"][0]["url"].startswith("https://www.uniprot")
    assert main(["ask", "--model", str(stage2), "--index", str(out / "index"), "--sequence", sequence,
                 "--max-new-tokens", "4", "--device", "cpu", "What does it do?"]) == 0
    assert "evidence:" in capsys.readouterr().out


def test_demo_builds_the_training_index_and_answers_with_it(retrieval_run, tiny_store_dir, tmp_path):
    from sepit.demo import DemoPlan, build_reference, demo_config, demo_retriever

    _, _, _, stage2 = retrieval_run
    plan = DemoPlan(data=tmp_path, out=tmp_path / "demo")
    plan.out.mkdir()
    plan.dataset.symlink_to(tiny_store_dir)
    build_reference(plan)
    build_reference(plan)  # done: checked against the dataset, not rebuilt
    assert json.loads((plan.index / "meta.json").read_text())["split"] == ["train"]
    cfg = demo_config(plan)
    assert cfg.retrieval.enabled and cfg.retrieval.index == str(plan.index)
    retriever = demo_retriever(plan, stage2)
    assert retriever.k == 3 and retriever.index.folder == plan.index


def test_ask_fasta_rows_carry_evidence_with_an_index(retrieval_run, tmp_path):
    """`sepit ask --fasta F QUESTION... --out` with --index: every row carries the hits shown and the checked
    citations; without --index the rows have no evidence field."""
    from sepit.cli import main

    _, out, _, stage2 = retrieval_run
    entries = list(ReferenceIndex(out / "index").entries.values())[:2]
    fasta = tmp_path / "p.fasta"
    fasta.write_text("".join(f">sp|{e.accession}|X_HUMAN\n{e.sequence}\n" for e in entries))
    for index, name in (([ "--index", str(out / "index")], "with.jsonl"), ([], "without.jsonl")):
        assert main(["ask", "--model", str(stage2), "--fasta", str(fasta), "--out", str(tmp_path / name),
                     "--max-new-tokens", "3", "--device", "cpu", "--no-progress", *index,
                     "What does it do?", "Is it an enzyme?", "--choices", "", "--choices", "yes|no"]) == 0
    with_rows = [json.loads(line) for line in (tmp_path / "with.jsonl").read_text().splitlines()]
    assert len(with_rows) == 4
    for row in with_rows:
        shown = {e["accession"] for e in row["evidence"]}
        assert row["accession"] in shown  # a proteome protein may be in the index: its own entry is evidence
        assert set(row["citations"]) <= shown and "unsupported_citations" in row
    without = [json.loads(line) for line in (tmp_path / "without.jsonl").read_text().splitlines()]
    assert len(without) == 4 and all("evidence" not in row for row in without)
