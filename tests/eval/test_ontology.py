"""Ontology-level scores on constructed cases with hand-computed values, and the real GO.db lexicon."""

import math
from pathlib import Path

import pytest

from sepit.data.go import GeneOntology
from sepit.eval.go_metrics import OntologyContext, go_aspect_scores, ontology_metrics
from sepit.eval.ontology import (
    GoLexicon,
    cafa_scores,
    ec_level_match,
    ec_numbers,
    entity_f1,
    information_accretion,
)
from sepit.eval.records import Prediction

# R (MF root) <- A <- C ; R <- B ; one CC term K under the CC root Q
OBO = """format-version: 1.2

[Term]
id: GO:0003674
name: molecular_function
namespace: molecular_function

[Term]
id: GO:0000002
name: alpha binding
namespace: molecular_function
synonym: "alpha ligand binding" EXACT []
is_a: GO:0003674

[Term]
id: GO:0000003
name: beta activity
namespace: molecular_function
is_a: GO:0003674

[Term]
id: GO:0000004
name: alpha gamma binding
namespace: molecular_function
is_a: GO:0000002

[Term]
id: GO:0005575
name: cellular_component
namespace: cellular_component

[Term]
id: GO:0000005
name: beta activity complex
namespace: cellular_component
relationship: part_of GO:0005575
"""
R, A, B, C, K = "GO:0003674", "GO:0000002", "GO:0000003", "GO:0000004", "GO:0000005"


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    path = tmp_path_factory.mktemp("go") / "mini.obo"
    path.write_text(OBO)
    return GoLexicon(GeneOntology.load(path))


def test_lexicon_longest_match_synonyms_aspects(lexicon):
    assert lexicon.terms("It has alpha gamma binding.", "MF") == {C}  # longest match, not "alpha binding"
    assert lexicon.terms("alpha ligand binding; beta activity", "MF") == {A, B}  # synonym
    assert lexicon.terms("part of the beta activity complex", "MF") == set()  # CC term, other aspect
    assert lexicon.terms("part of the beta activity complex", "CC") == {K}
    assert lexicon.terms("see GO:0000003", "MF") == {B}  # literal id
    assert lexicon.terms("nothing known", "MF") == set()
    assert lexicon.propagate({C}) == {C, A, R}


def test_information_accretion_by_hand(lexicon):
    annotations = [{C, A, R}, {A, R}, {B, R}, {R}]
    ia = information_accretion(annotations, lexicon.go.parents)
    assert ia[R] == pytest.approx(0.0)  # no parents: 4 of 4
    assert ia[A] == pytest.approx(1.0)  # 2 of the 4 proteins with R
    assert ia[C] == pytest.approx(1.0)  # 1 of the 2 proteins with A
    assert ia[B] == pytest.approx(2.0)  # 1 of 4


def test_fmax_smin_by_hand(lexicon):
    # p1: true {C, A}, predicts B at 1.0; p2: true {B}, predicts B at 0.5 (root R excluded)
    truth = {"p1": {C, A, R}, "p2": {B, R}}
    predicted = {"p1": {B: 1.0, R: 1.0}, "p2": {B: 0.5, R: 0.5}}
    ia = {R: 0.0, A: 1.0, C: 1.0, B: 2.0}
    out = cafa_scores(truth, predicted, ia, exclude=frozenset({R}))
    # t <= 0.5: precision (0 + 1) / 2, recall (0/2 + 1/1) / 2 -> F 0.5; t > 0.5: p2 predicts nothing -> F 0
    assert out["fmax"] == pytest.approx(0.5) and out["threshold"] == pytest.approx(0.01)
    assert out["precision"] == pytest.approx(0.5) and out["recall"] == pytest.approx(0.5)
    assert out["coverage"] == pytest.approx(1.0) and out["n"] == 2
    # t <= 0.5: ru = (IA(C)+IA(A) + 0) / 2 = 1, mi = (IA(B) + 0) / 2 = 1 -> sqrt(2); t > 0.5: sqrt(2^2 + 1^2)
    assert out["smin"] == pytest.approx(math.sqrt(2))


def _row(model, acc, category, answer, prediction, **extra):
    return Prediction(id=f"{acc}:{category}", accession=acc, task="open", category=category, question="q",
                      answer=answer, prediction=prediction, model=model, extra=extra)


def test_unmapped_answers_are_counted_not_dropped(lexicon):
    ctx = OntologyContext(lexicon=lexicon, bootstrap=0)
    rows = [_row("m", "p1", "go_mf", "alpha gamma binding", "alpha binding"),  # {A} vs {C, A}
            _row("m", "p2", "go_mf", "beta activity", "I do not know")]  # unmapped prediction
    out = go_aspect_scores(ctx, rows, "MF")
    assert out["n"] == 2 and out["unmapped_predictions"] == 1 and out["unmapped_references"] == 0
    # one threshold: precision 1/1 over the covered protein, recall (1/2 + 0) / 2 = 0.25 -> F = 0.4
    assert out["fmax"] == pytest.approx(0.4) and out["coverage"] == pytest.approx(0.5)


def test_term_scores_give_the_curve(lexicon):
    ctx = OntologyContext(lexicon=lexicon, bootstrap=0)
    rows = [_row("naive", "p1", "go_mf", "alpha gamma binding", "x", term_scores={C: 0.9, "beta activity": 0.3})]
    out = go_aspect_scores(ctx, rows, "MF")
    # t <= 0.3: {C, A, B}: P 2/3, R 1 -> F 0.8; 0.3 < t <= 0.9: {C, A}: F 1.0
    assert out["fmax"] == pytest.approx(1.0) and 0.3 < out["threshold"] <= 0.9


def test_ec_and_entity_f1_by_hand():
    assert ec_numbers("EC 1.1.1.1 and EC 2.7.11.-") == ["1.1.1.1", "2.7.11.-"]
    assert ec_level_match("It is EC 2.7.1.5.", "EC 2.7.11.1") == {1: True, 2: True, 3: False, 4: False}
    assert ec_level_match("no idea", "EC 6.3.2.-") == {1: False, 2: False, 3: False, 4: None}
    out = entity_f1([({"a", "b"}, {"a"}), (set(), {"c", "d"}), ({"x"}, set())])  # last: no reference, skipped
    # tp 1, predicted 2, reference 3
    assert out["n"] == 2 and out["no_entity"] == 1
    assert out["precision"] == pytest.approx(0.5) and out["recall"] == pytest.approx(1 / 3)
    assert out["f1"] == pytest.approx(0.4)


def test_ontology_metrics_entities_and_levels(lexicon):
    ctx = OntologyContext(lexicon=lexicon, bootstrap=0)
    rows = [_row("m", "p1", "go_mf", "alpha gamma binding", "alpha gamma binding"),
            _row("m", "p2", "subcellular_location", "Nucleus; Cytoplasm.", "It is in the nucleus."),
            _row("m", "p3", "ec", "EC 3.1.1.1", "EC 3.1.2.1")]
    out = ontology_metrics(rows, ctx)
    assert out["go"]["MF"]["fmax"] == pytest.approx(1.0)
    assert out["entity_f1"]["go"]["f1"] == pytest.approx(1.0)
    assert out["entity_f1"]["location"]["precision"] == pytest.approx(1.0)
    assert out["entity_f1"]["location"]["recall"] == pytest.approx(0.5)
    assert out["entity_f1"]["ec"]["f1"] == pytest.approx(0.0)
    assert [out["ec_levels"][k]["accuracy"] for k in "1234"] == [1.0, 1.0, 0.0, 0.0]


def test_real_go_db_maps_old_names_by_synonym():
    from sepit.resources import default_go_ontology

    path = default_go_ontology()
    if not path or not Path(path).is_file():
        pytest.skip("GO.sqlite not installed (scripts/install.sh extracts it)")
    lex = GoLexicon(GeneOntology.load(path))
    assert lex.terms("integral to membrane; plasma membrane", "CC") >= {"GO:0016021", "GO:0005886"}
    assert "GO:0005575" in lex.propagate(lex.terms("plasma membrane", "CC"))
