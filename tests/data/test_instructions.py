"""Instruction items: families, balance, true negatives, determinism."""

from __future__ import annotations

from collections import Counter

from sepit.data.annotations import closed_labels
from sepit.data.instructions import InstructionConfig, make_instructions
from sepit.data.uniprot import parse_flatfile


def _records(fixtures):
    return list(parse_flatfile(fixtures / "mini.dat"))


def test_items_cover_families_and_contract(fixtures):
    records = _records(fixtures)
    items = make_instructions(records, InstructionConfig(seed=1))
    first = [i for i in items if i["accession"] == "Q00001"]
    open_cats = {i["category"] for i in first if i["task"] == "open"}
    assert len(open_cats) >= 12 and {"function", "catalytic_activity", "go_mf", "family", "ec"} <= open_cats
    caption = [i for i in first if i["task"] == "caption"]
    assert len(caption) == 1 and caption[0]["answer"].startswith("Serine/threonine kinase")
    for item in items:
        assert "<protein>" not in item["question"] and "{" not in item["answer"]
        if item["task"] == "closed":
            assert item["answer"] in item["choices"]
        else:
            assert item["choices"] == []
    assert len({i["id"] for i in items}) == len(items)


def test_yes_no_balanced_and_truly_negative(fixtures):
    records = _records(fixtures)
    labels = {r.accession: closed_labels(r) for r in records}
    items = make_instructions(records, InstructionConfig(seed=3))
    yes_no = [i for i in items if i["choices"] == ["yes", "no"]]
    assert yes_no and Counter(i["answer"] for i in yes_no)["yes"] == Counter(i["answer"] for i in yes_no)["no"]
    for item in yes_no:
        own = {v.lower() for v in labels[item["accession"]][item["category"]]}
        mentioned = [v for v in own if v in item["question"].lower()]
        assert bool(mentioned) == (item["answer"] == "yes"), item
        assert item["label"].lower() in item["question"].lower()  # the label it asks about, stored
        assert (item["label"].lower() in own) == (item["answer"] == "yes"), item


def test_multiple_choice_one_correct(fixtures):
    records = _records(fixtures)
    labels = {r.accession: closed_labels(r) for r in records}
    items = make_instructions(records, InstructionConfig(seed=0))
    mc = [i for i in items if i["task"] == "closed" and i["choices"] != ["yes", "no"]]
    assert {i["category"] for i in mc} >= {"subcellular_location", "ec_class", "family"}
    for item in mc:
        own = set(labels[item["accession"]][item["category"]])
        assert sum(c in own for c in item["choices"]) == 1 and item["answer"] in own


def test_deterministic_for_seed(fixtures):
    records = _records(fixtures)
    def make(seed):
        return make_instructions(records, InstructionConfig(seed=seed))

    assert make(5) == make(5) and make(5) != make(6)
