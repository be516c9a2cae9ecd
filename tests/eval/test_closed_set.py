"""Closed-set answer extraction, accuracy and calibration."""

import pytest

from sepit.eval.closed_set import closed_metrics, expected_calibration_error, parse_choice
from sepit.eval.records import Prediction

LOC = ["nucleus", "cytoplasm", "cell membrane", "membrane"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cytoplasm.", "cytoplasm"),  # whole answer is an option
        ("Answer: cell membrane", "cell membrane"),
        ("B)", "cytoplasm"),
        ("B. It is cytosolic", "cytoplasm"),
        ("(c) cell membrane", "cell membrane"),
        ("The answer is D", "membrane"),
        ("Option A", "nucleus"),
        ("It is found in the cell membrane and nucleus.", "cell membrane"),  # first mention, longest option
        ("A protein of the cytoplasm", "cytoplasm"),  # article "A" is not a letter choice
        ("I don't know", None),
        ("", None),
    ],
)
def test_parse_multiple_choice(text, expected):
    assert parse_choice(text, LOC) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, it binds heme.", "Yes"),
        ("yes", "Yes"),
        ("No.", "No"),
        ("True", "Yes"),
        ("This protein does not bind heme.", "No"),
        ("It isn't a heme protein", "No"),
        ("Yes. It does not need a cofactor.", "Yes"),  # first mention wins
        ("It binds heme.", None),
    ],
)
def test_parse_yes_no(text, expected):
    assert parse_choice(text, ["Yes", "No"]) == expected


def test_ece_by_hand():
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5 -> 0.4; bin (0.5, 0.6]: confidence 0.6, accuracy 1 -> 0.4
    conf, correct = [0.9, 0.9, 0.6, 0.6], [True, False, True, True]
    assert expected_calibration_error(conf, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == pytest.approx(0.0)


def _row(pred, answer, probs=None):
    return Prediction(id=pred, accession="P1", task="closed", category="heme", question="q", answer=answer,
                      prediction=pred, model="m", choices=("yes", "no"), option_probs=probs)


def test_closed_metrics_counts_unparsed_as_wrong():
    rows = [_row("Yes", "yes", {"yes": 0.9, "no": 0.1}), _row("maybe", "yes", {"yes": 0.3, "no": 0.7}),
            _row("", "no", {"yes": 0.2, "no": 0.8})]  # blank prediction: argmax of option_probs
    out = closed_metrics(rows)
    assert out["accuracy"] == pytest.approx(2 / 3) and out["unparsed"] == 1
    assert out["accuracy_likelihood"] == pytest.approx(2 / 3)
    # bins: 0.9 correct (|1-0.9|), 0.7 wrong (|0-0.7|), 0.8 correct (|1-0.8|), one item per bin
    assert out["ece"] == pytest.approx((0.1 + 0.7 + 0.2) / 3)
    assert sum(b["count"] for b in out["reliability"]) == 3


@pytest.mark.parametrize(
    ("text", "question", "expected"),
    [
        ("It binds heme, not iron.", "Does this protein bind heme?", "yes"),
        ("It binds iron, not heme.", "Does this protein bind heme?", "no"),
        ("It binds iron but not heme.", "Does this protein bind heme?", "no"),
        ("It does not bind heme.", "Does this protein bind heme?", "no"),
        ("It binds heme.", "Does this protein bind heme?", "yes"),  # affirmative clause naming heme
        ("It lacks heme; it binds iron.", "Does this protein bind heme?", "no"),
        ("It binds iron.", "Does this protein bind heme?", None),  # never names heme: unparsed
        ("No, although it binds heme.", "Does this protein bind heme?", "no"),  # a leading answer decides
        ("Found in the cytoplasm, not in the nucleus.", "Is this protein located in the Nucleus?", "no"),
        ("Found in the cytoplasm, not in the nucleus.", "Is this protein located in the Cytoplasm?", "yes"),
        ("It has no kinase activity but binds ATP.",
         "Is 'protein kinase activity' a molecular function of this protein?", "no"),  # quoted term
    ],
)
def test_yes_no_negation_in_context(text, question, expected):
    assert parse_choice(text, ["yes", "no"], question) == expected


def test_closed_metrics_reads_negation_with_the_question():
    row = Prediction(id="1", accession="P1", task="closed", category="heme", question="Does it bind heme?",
                     answer="yes", prediction="It binds heme, not iron.", model="m", choices=("yes", "no"))
    assert closed_metrics([row])["accuracy"] == 1.0  # the first cue alone ("not") would have said no
