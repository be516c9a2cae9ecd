"""Closed-set answers from the model and the evidence (sepit.retrieval.vote): hand-computed votes and mixtures."""

from __future__ import annotations

import pytest

from sepit.retrieval.evidence import Evidence
from sepit.retrieval.vote import asked_label, evidence_vote, grounded_choice, mix, supporters


def _ev(acc: str, identity: float, labels: tuple[str, ...]) -> Evidence:
    return Evidence(acc, identity, 1.0, 1.0, 1e-10, 50.0, "annotation", labels)


HEME = [_ev("A", 0.6, ("heme binding", "iron ion binding")), _ev("B", 0.2, ("ATP binding",)), _ev("C", 0.3, ())]


def test_yes_no_vote_by_hand():
    # A carries the label (yes, 0.6), B is annotated without it (no, 0.2), C abstains; prior weight 1 over 2
    vote = evidence_vote(HEME, ["yes", "no"], "heme binding", prior_weight=1.0)
    assert vote == pytest.approx({"yes": (0.6 + 0.5) / 1.8, "no": (0.2 + 0.5) / 1.8})
    assert [e.accession for e in supporters(HEME, ["yes", "no"], "Heme binding")["yes"]] == ["A"]
    assert evidence_vote(HEME, ["yes", "no"], "", 1.0) is None  # no label: nothing to vote on
    assert evidence_vote([HEME[2]], ["yes", "no"], "heme binding", 1.0) is None  # only an abstaining hit


def test_multiple_choice_vote_and_mixture():
    hits = [_ev("A", 0.9, ("Nucleus", "Cytoplasm")), _ev("B", 0.3, ("Cytoplasm",))]
    vote = evidence_vote(hits, ["Nucleus", "Cytoplasm", "Membrane"], prior_weight=1.0)
    # weights: Nucleus 0.9, Cytoplasm 1.2, Membrane 0; total 2.1; smoothing 1/3 each
    assert vote == pytest.approx({"Nucleus": (0.9 + 1 / 3) / 3.1, "Cytoplasm": (1.2 + 1 / 3) / 3.1,
                                  "Membrane": (1 / 3) / 3.1})
    model = {"Nucleus": 0.1, "Cytoplasm": 0.1, "Membrane": 0.8}
    mixed = mix(model, vote, 0.5)
    assert mixed["Membrane"] == pytest.approx(0.5 * 0.8 + 0.5 * (1 / 3) / 3.1, abs=1e-6)
    assert mix(model, vote, 0.0) == model and mix(model, None, 0.5) == model


def test_grounded_choice_cites_the_hits_that_carry_the_answer():
    item = {"question": "Does it bind heme?", "choices": ["yes", "no"], "label": "heme binding"}
    out = grounded_choice({"yes": 0.3, "no": 0.7}, item, HEME, weight=0.5)
    # yes: 0.5 * 0.3 + 0.5 * 1.1 / 1.8 = 0.4556; no: 0.5 * 0.7 + 0.5 * 0.7 / 1.8 = 0.5444 -> no, no citation
    assert out["choice"] == "no" and out["text"] == "no" and out["model_option_probs"] == {"yes": 0.3, "no": 0.7}
    out = grounded_choice({"yes": 0.45, "no": 0.55}, item, HEME, weight=0.5)
    assert out["choice"] == "yes" and out["text"] == "yes [UniProt:A]"
    assert grounded_choice({"yes": 0.45, "no": 0.55}, item, [], 0.5)["choice"] == "no"  # no evidence: the model
    assert grounded_choice({"yes": 0.45, "no": 0.55}, item, None, 0.5)["evidence_option_probs"] is None


def test_label_of_a_users_question_is_read_from_the_hits():
    assert asked_label("Does this protein have heme binding activity?", HEME) == "heme binding"
    assert asked_label("Does it bind heme?", HEME) == ""  # "heme binding" is not named as such
    user = {"question": "Is ATP binding a function of it?", "choices": ["yes", "no"]}
    out = grounded_choice({"yes": 0.5, "no": 0.5}, user, HEME, weight=0.5)
    assert out["evidence_option_probs"] == pytest.approx({"yes": (0.2 + 0.5) / 1.8, "no": (0.6 + 0.5) / 1.8})


def test_shown_hits_prefer_those_annotated_in_the_category():
    from sepit.retrieval.evidence import annotated_first
    from sepit.retrieval.index import Entry
    from sepit.retrieval.search import Hit

    class Index:
        entries = {"A": Entry("A", "M", {"function": "binds"}), "B": Entry("B", "M", labels={"go_cc": ["nucleus"]}),
                   "C": Entry("C", "M", {"subcellular_location": "Nucleus"}), "D": Entry("D", "M")}

    hits = [Hit(a, 0.5 - i / 10, 1, 1, 1e-5, 30) for i, a in enumerate("ABCD")]
    pick = lambda category, k: [h.accession for h in annotated_first(Index, hits, category, k)]  # noqa: E731
    assert pick("subcellular_location", 2) == ["C", "A"]  # the annotated one first, then rank order
    assert pick("go_cc", 3) == ["B", "A", "C"] and pick("function", 1) == ["A"]
    assert pick("caption", 2) == ["A", "B"] and pick(None, 4) == ["A", "B", "C", "D"]
