"""The naive baseline: the training label distribution per category, never the protein."""

import pytest

from sepit.eval.baselines import Item
from sepit.eval.naive import naive_predictions, term_frequencies


def _items():
    train = [Item(f"t{i}", f"T{i}", "closed", "loc", "Is it in the nucleus?", "no" if i < 3 else "yes",
                  ("yes", "no")) for i in range(4)]
    train += [Item("c1", "T0", "closed", "ec_class", "Which class?", "ligase", ("hydrolase", "ligase")),
              Item("o1", "T0", "open", "function", "What does it do?", "Binds DNA."),
              Item("o2", "T1", "open", "function", "What does it do?", "Binds DNA."),
              Item("o3", "T2", "open", "function", "What does it do?", "Transports ions.")]
    test = [Item("q1", "Q1", "closed", "loc", "Is it in the cytoplasm?", "yes", ("yes", "no")),
            Item("q2", "Q1", "closed", "ec_class", "Which class?", "hydrolase", ("hydrolase", "isomerase", "ligase")),
            Item("q3", "Q1", "open", "function", "What is its function?", "Kinase."),
            Item("q4", "Q1", "open", "go_mf", "GO MF terms?", "alpha"),
            Item("q5", "Q1", "open", "unseen", "Anything?", "x")]
    return train, test


def test_most_frequent_answer_and_prior_probabilities():
    train, test = _items()
    labels = {"T0": {"go_mf": ["alpha", "beta"]}, "T1": {"go_mf": ["alpha"]}, "T2": {}}
    rows = {r.id: r for r in naive_predictions(train, test, train_labels=labels)}
    assert rows["q1"].prediction == "no"  # 3 of 4 training answers
    assert rows["q1"].option_probs == pytest.approx({"yes": 2 / 6, "no": 4 / 6})  # add-one smoothed
    assert rows["q2"].prediction == "ligase"
    assert rows["q2"].option_probs == pytest.approx({"hydrolase": 1 / 4, "isomerase": 1 / 4, "ligase": 2 / 4})
    assert rows["q3"].prediction == "Binds DNA." and rows["q3"].model == "naive"
    assert rows["q4"].extra["term_scores"] == pytest.approx({"alpha": 1.0, "beta": 0.5})  # of 2 annotated
    assert rows["q5"].prediction == ""  # nothing seen in training: an empty answer, still scored


def test_term_frequencies_only_for_annotated_go_categories():
    assert term_frequencies({"A": {"go_cc": ["x"]}, "B": {"go_cc": ["x", "y"]}, "C": {}}) == {
        "go_cc": {"x": 1.0, "y": 0.5}}
