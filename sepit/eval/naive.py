"""The naive baseline (CAFA's "naive"): answers from the training label distribution, never from the protein.

Per (task, category) of the training split:
- closed-set items: the option given most often as the training answer (ties: the first option);
  ``option_probs`` = the training answer frequencies over the item's options (add-one smoothed);
- open and caption items: the most frequent training answer text of the category;
- GO items (``go_mf``/``go_bp``/``go_cc``), in addition, ``term_scores``: each GO term's frequency among the
  training proteins annotated in that aspect (propagated to ancestors when a GO graph is given, else the label
  names as stored), the top ``max_terms``; the ontology scorer reads them as scores (full Fmax curve).
A protein's own sequence is never read: it measures what the label prior alone achieves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sepit.eval.ontology import ASPECT_OF_CATEGORY
from sepit.eval.records import Prediction

NAIVE_NAME = "naive"


def _answer_counts(train_items: Sequence) -> dict[tuple[str, str], Counter]:
    counts: dict[tuple[str, str], Counter] = {}
    for it in train_items:
        counts.setdefault((it.task, it.category), Counter())[it.answer] += 1
    return counts


def term_frequencies(train_labels: dict[str, dict[str, list[str]]], lexicon=None,
                     max_terms: int = 200) -> dict[str, dict[str, float]]:
    """GO category -> term (GO id with ``lexicon``, else label name) -> fraction of annotated training
    proteins carrying it (top ``max_terms``)."""
    out: dict[str, dict[str, float]] = {}
    for category, aspect in ASPECT_OF_CATEGORY.items():
        annotated = [labels[category] for labels in train_labels.values() if labels.get(category)]
        if not annotated:
            continue
        counts: Counter = Counter()
        for names in annotated:
            if lexicon is None:
                terms = set(names)
            else:
                terms = {t for t in lexicon.propagate(lexicon.terms("; ".join(names), aspect))
                         if lexicon.go.aspects.get(t) == aspect}
            counts.update(terms)
        out[category] = {t: n / len(annotated) for t, n in counts.most_common(max_terms)}
    return out


def naive_predictions(train_items: Sequence, test_items: Sequence, model: str = NAIVE_NAME,
                      train_labels: dict[str, dict[str, list[str]]] | None = None, lexicon=None,
                      max_terms: int = 200) -> list[Prediction]:
    """One prediction per test item (``Item`` objects of :mod:`sepit.eval.baselines`); module docstring."""
    counts = _answer_counts(train_items)
    terms = term_frequencies(train_labels or {}, lexicon, max_terms)
    out = []
    for item in test_items:
        seen = counts.get((item.task, item.category), Counter())
        if item.choices:
            weights = {c: seen.get(c, 0) + 1 for c in item.choices}
            total = sum(weights.values())
            probs = {c: w / total for c, w in weights.items()}
            text = max(item.choices, key=lambda c: (weights[c], -item.choices.index(c)))
            row = item.predict(text, model, option_probs=probs)
        else:
            text = seen.most_common(1)[0][0] if seen else ""
            row = item.predict(text, model)
            if item.category in terms:
                row.extra["term_scores"] = terms[item.category]
        out.append(row)
    return out
