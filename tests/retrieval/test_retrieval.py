"""Retrieval: both search backends give the same rows, the index is atomic, fingerprinted and never includes the
test split silently, a protein never retrieves itself, citations are checked against the evidence."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from sepit.cli import main
from sepit.errors import SepitError
from sepit.prompts import NO_HITS, cited_accessions, format_context, format_question, strip_citations
from sepit.retrieval.evidence import Retriever, annotation_for, check_citations, evidence_for
from sepit.retrieval.index import Entry, ReferenceIndex, ReferenceIndexError, build_index, write_index
from sepit.retrieval.search import MmseqsSearch, OpalSearch, TopK, mmseqs_exe

ALPHABET = "ACDEFGHIKLMNPQRSTVWY"


def _family(seed=0, n_families=6, members=3, length=150):
    """Families of mutated copies of random parents: members share ~70-85% identity, families are unrelated."""
    rng = random.Random(seed)
    seqs = {}
    for f in range(n_families):
        parent = "".join(rng.choice(ALPHABET) for _ in range(length))
        for m in range(members):
            s = list(parent)
            for pos in rng.sample(range(length), 15 + 10 * m):
                s[pos] = rng.choice(ALPHABET)
            seqs[f"F{f}M{m}"] = "".join(s)
    return seqs


def _entries(seqs):
    return [Entry(a, s, {"function": f"function of family {a[1]}"}, {"go_mf": [f"label {a[1]}"]})
            for a, s in seqs.items()]


@pytest.fixture(scope="module")
def family_index(tmp_path_factory):
    seqs = _family()
    out = tmp_path_factory.mktemp("idx") / "index"
    write_index(out, _entries(seqs), {"fingerprint": "x", "split": ["train"]})
    return out, seqs


def test_opal_finds_family_members_never_itself_and_keeps_k(family_index):
    _, seqs = family_index
    search = OpalSearch(list(seqs), list(seqs.values()))
    hits = search.search({"F2M0": seqs["F2M0"]}, k=2)["F2M0"]
    assert [h.accession for h in hits] and {h.accession for h in hits} == {"F2M1", "F2M2"}
    assert all(0.6 < h.identity < 1 and h.evalue < 1e-10 and h.query_coverage > 0.9 for h in hits)
    hits_self = search.search({"F2M0": seqs["F2M0"]}, k=1, exclude_self=False)["F2M0"]
    assert hits_self[0].accession == "F2M0" and hits_self[0].identity == 1.0
    assert search.search({"poly": "W" * 20}, k=3, max_evalue=1e-3) == {"poly": []}  # nothing significant


@pytest.mark.skipif(mmseqs_exe() is None, reason="mmseqs not installed")
def test_mmseqs_and_opal_give_the_same_rows(family_index):
    folder, seqs = family_index
    queries = {a: seqs[a] for a in ("F0M0", "F3M2", "F5M1")}
    opal = OpalSearch(list(seqs), list(seqs.values())).search(queries, k=2)
    mm = MmseqsSearch(folder / "mmseqs" / "targets").search(queries, k=2)
    for q in queries:
        assert {h.accession for h in mm[q]} == {h.accession for h in opal[q]}
        for a, b in zip(sorted(mm[q], key=lambda h: h.accession), sorted(opal[q], key=lambda h: h.accession),
                        strict=True):
            assert a.identity == pytest.approx(b.identity, abs=0.03)
            assert a.query_coverage == pytest.approx(b.query_coverage, abs=0.05)
            assert q not in {h.accession for h in mm[q]}


def test_topk_keeps_the_best_k_whatever_the_order():
    from sepit.retrieval.search import Hit

    top = TopK(2)
    for i, e in enumerate([1e-3, 1e-9, 5.0, 1e-20, 0.1]):
        top.add("q", Hit(f"T{i}", 0.5, 1, 1, e, 10))
    assert [h.accession for h in top.result(["q"])["q"]] == ["T3", "T1"]


def test_index_from_dataset_is_fingerprinted_and_refuses_test_and_stale(tiny_store_dir, tmp_path):
    out = tmp_path / "index"
    with pytest.raises(SepitError, match="allow-test"):
        build_index(tiny_store_dir, out, "train,test")
    assert not out.exists()
    build_index(tiny_store_dir, out, "train")
    index = ReferenceIndex(out)
    from sepit.data.store import DatasetStore

    store = DatasetStore(tiny_store_dir)
    train = set(store.instructions("train")["accession"])
    assert set(index.entries) == train and index.splits == ["train"]
    entry = next(iter(index.entries.values()))
    assert entry.sequence == store.protein(entry.accession).sequence and entry.annotations
    index.check_dataset(tiny_store_dir, "test")
    stale = tmp_path / "stale"
    shutil.copytree(tiny_store_dir, stale)
    (stale / "summary.json").write_text((stale / "summary.json").read_text() + " ")
    with pytest.raises(ReferenceIndexError, match="stale"):
        index.check_dataset(stale)
    with pytest.raises(ReferenceIndexError, match="not a sepit reference index"):
        ReferenceIndex(tmp_path / "nowhere")


def test_index_cli_build_and_search(tiny_store_dir, tmp_path, capsys):
    out = tmp_path / "idx"
    assert main(["index", "build", "--data", str(tiny_store_dir), "--out", str(out), "--method", "opal"]) == 0
    assert main(["index", "build", "--data", str(tiny_store_dir), "--out", str(out)]) == 2  # exists
    acc, entry = next(iter(ReferenceIndex(out).entries.items()))
    capsys.readouterr()
    assert main(["index", "search", "--index", str(out), "--sequence", entry.sequence, "--k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["accession"] == acc and hits[0]["identity"] == 1.0


def test_evidence_annotation_context_and_citations(family_index):
    folder, seqs = family_index
    index = ReferenceIndex(folder, method="opal")
    retriever = Retriever(index, k=2)
    ev = retriever.evidence([{"sequence": seqs["F1M0"], "category": "function", "accession": "F1M0"}],
                            exclude_self=True)[0]
    assert {e.accession for e in ev} == {"F1M1", "F1M2"} and ev[0].annotation == "function of family 1"
    entry = index.entries["F1M1"]
    assert annotation_for(entry, "go_mf") == "label 1"
    assert "function: function of family 1" in annotation_for(entry, "caption")  # summary of several fields
    context = format_context(ev)
    assert "[UniProt:F1M1]" in context and "identity" in context
    assert format_context([]) == NO_HITS
    prompt = format_question("Does it bind heme?", ["yes", "no"], context)
    assert prompt.startswith(context) and prompt.endswith("Answer yes or no.")
    assert format_question("What?", None) == "What?"  # without retrieval: the paper's prompt, unchanged
    text = "It is a kinase [UniProt:F1M1], like [UniProt:P99999] and [UniProt:F1M1]."
    assert cited_accessions(text) == ["F1M1", "P99999"]
    cited = check_citations(text, ev)
    assert cited.supported == ["F1M1"] and cited.unsupported == ["P99999"]
    assert strip_citations("[UniProt:F1M1] It is a kinase [UniProt:P99999].") == "It is a kinase ."
    from sepit.eval.closed_set import closed_metrics
    from sepit.eval.metrics import EvalConfig, Scorers, evaluate
    from sepit.eval.records import Prediction

    cited_row = Prediction("1", "Q", "open", "function", "q", "a kinase", "[UniProt:F1M1] a kinase", "m")
    closed_row = Prediction("2", "Q", "closed", "family", "q", "Nucleus", "[UniProt:F1M1] Nucleus", "m",
                            choices=("Nucleus", "Cytoplasm"))
    assert cited_row.text == "a kinase" and closed_metrics([closed_row])["accuracy"] == 1.0
    scored = evaluate([cited_row], Scorers(EvalConfig(bertscore=False, meteor=False, paper_bleu=False)))
    assert scored["models"]["m"]["open"]["rougeL"] == 1.0  # the citation is not scored as words
    assert [e.to_dict()["url"] for e in evidence_for(index, [], "function")] == []


def test_audit_counts_unsupported_citations_and_label_support():
    from sepit.eval.records import Prediction
    from sepit.retrieval.audit import audit, audit_markdown

    ev = [{"accession": "A1", "labels": ["heme"]}, {"accession": "B2", "labels": []}]

    def row(i, prediction, citations, unsupported, label="heme", evidence=ev):
        return Prediction(str(i), "Q", "closed", "cofactor", "Heme?", "yes", prediction, "m", ("yes", "no"),
                          extra={"evidence": evidence, "citations": citations,
                                 "unsupported_citations": unsupported, "label": label})

    rows = [row(1, "yes [UniProt:A1]", ["A1"], []), row(2, "yes [UniProt:B2] [UniProt:X9]", ["B2"], ["X9"]),
            row(3, "no", [], []), row(4, "yes", [], [], evidence=[])]
    a = audit(rows)
    assert a["with_retrieval"] == 4 and a["no_hits"] == 1 and a["citing"] == 2 and a["unsupported_citations"] == 1
    assert a["yes_about_label"] == 3 and a["yes_cited_entry_has_label"] == 0.5 and a["yes_top_hit_has_label"] == 1.0
    assert "| m | 4 | 4 | 1 | 2 | 1 | 3 | 50% | 100% |" in audit_markdown({"m": a})
    assert "mixture" not in audit_markdown({"m": a})  # no voted closed-set rows: no parts table

    def voted(i, model, vote, mixed):
        return Prediction(str(i), "Q", "closed", "cofactor", "Heme?", "yes", "", "v", ("yes", "no"), mixed,
                          extra={"evidence": ev, "citations": [], "unsupported_citations": [], "label": "heme",
                                 "model_option_probs": model, "evidence_option_probs": vote})

    y, n = {"yes": 0.6, "no": 0.4}, {"yes": 0.4, "no": 0.6}
    parts = audit([voted(1, n, y, y), voted(2, n, None, n), voted(3, y, n, y)])
    assert (parts["closed_voted"], parts["closed_with_vote"]) == (3, 2)
    assert (parts["closed_model_acc"], parts["closed_vote_acc"], parts["closed_mixed_acc"]) == (0.3333, 0.5, 0.6667)
    assert "| v | 3 | 33.3% | 2 | 50.0% | 66.7% |" in audit_markdown({"v": parts})


def test_auto_backend_uses_mmseqs_only_when_it_pays(family_index, monkeypatch):
    import sepit.retrieval.index as index_module

    folder, _ = family_index
    index = ReferenceIndex(folder)
    assert index.backend(1) == "opal"  # a small reference: pyopal
    monkeypatch.setattr(index_module, "AUTO_OPAL_MAX", 1)
    if mmseqs_exe() is not None:
        assert index.backend(1) == "opal" and index.backend(index_module.AUTO_MMSEQS_BATCH) == "mmseqs"
        index.meta["mmseqs_index"] = True  # precomputed k-mer table: single queries go to MMseqs2 too
        assert index.backend(1) == "mmseqs"
    assert ReferenceIndex(folder, method="opal").backend(1000) == "opal"


def test_unreadable_index_is_named(family_index, tmp_path):
    folder, _ = family_index
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "entries.json").write_text("{not json")
    with pytest.raises(ReferenceIndexError, match="entries.json"):
        ReferenceIndex(broken)


def test_llm_baseline_sees_the_same_evidence(family_index, tmp_path):
    """The LLM-alone baseline with a retriever: prompts hold the evidence block, rows carry it (never self)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sepit.eval.baselines import Item, chat_prompt, llm_prior_predictions
    from sepit.resources import smollm2_path

    folder, seqs = family_index
    tok = AutoTokenizer.from_pretrained(smollm2_path())
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "llm")
    tok.save_pretrained(tmp_path / "llm")
    items = [Item("a", "F0M0", "closed", "go_mf", "Label 0?", "yes", ("yes", "no"), "label 0"),
             Item("b", "F4M1", "open", "function", "What does it do?", "function of family 4")]
    rows = llm_prior_predictions(items, model=str(tmp_path / "llm"), max_new_tokens=3,
                                 retriever=Retriever(ReferenceIndex(folder, method="opal")), sequences=seqs)
    for row, item in zip(rows, items, strict=True):
        shown = [e["accession"] for e in row.extra["evidence"]]
        assert item.accession not in shown and all(a[:2] == item.accession[:2] for a in shown[:2])
    assert rows[0].extra["evidence"][0]["labels"] == ["label 0"] and rows[0].extra["label"] == "label 0"
    assert "[UniProt:F4M" in chat_prompt(tok, items[1], format_context(
        Retriever(ReferenceIndex(folder)).evidence([{"sequence": seqs["F4M1"], "accession": "F4M1"}], True)[0]))
    plain = llm_prior_predictions(items[:1], model=str(tmp_path / "llm"), max_new_tokens=2)
    assert "evidence" not in plain[0].extra
