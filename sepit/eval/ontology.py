"""Ontology-level scoring of free text (CAFA style) and entity-level scores.

Free-text answers are mapped to GO terms by dictionary matching on GO names and synonyms (:class:`GoLexicon`:
greedy longest match over words, plus literal ``GO:nnnnnnn`` ids), restricted to the question's aspect and
propagated to all ancestors (is_a, part_of). Then, per aspect, protein-centric (CAFA):

- precision pr(t) = mean over proteins with at least one term scored >= t of |P(t) & T| / |P(t)|;
  recall rc(t) = mean over *all* proteins of |P(t) & T| / |T|; Fmax = max_t 2 pr rc / (pr + rc);
- information accretion IA(term) = -log2 P(term | all its parents), from the (propagated) training
  annotations; ru(t) = mean over proteins of the IA of missed true terms, mi(t) = mean IA of false terms;
  Smin = min_t sqrt(ru^2 + mi^2);
- coverage = fraction of proteins with at least one predicted term (at the best threshold).

Free text scores every mapped term 1.0 (one threshold); a scored prediction (``term_scores``: GO id or name ->
score, e.g. the naive baseline's term frequencies) gives the full curve. Answers whose text maps to no term
are counted (``unmapped``), never dropped: they predict nothing (recall 0 for that protein).

Entity-F1 (micro over items whose reference holds at least one entity of the type): GO terms (exact, not
propagated), EC numbers (exact string of four fields), subcellular locations (dictionary from the reference
vocabulary). EC exact match per level: the first EC number of the prediction against the reference's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

ASPECT_OF_CATEGORY = {"go_mf": "MF", "go_bp": "BP", "go_cc": "CC"}
THRESHOLDS = np.round(np.linspace(0.01, 1.0, 100), 2)  # CAFA: 0.01 steps
_GO_ID = re.compile(r"\bGO:\d{7}\b")
_EC = re.compile(r"\b(\d+)\.(\d+|-)\.(\d+|-)\.(n?\d+|-)(?!\w|\.\d)")
MAX_PHRASE_WORDS = 20


def normalise(text: str) -> list[str]:
    """Lower-case words; punctuation splits words (so that "plasma membrane;" == "plasma membrane")."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


class PhraseMatcher:
    """Greedy longest-match of dictionary phrases (word sequences) in text; phrase -> set of keys."""

    def __init__(self, phrases: Iterable[tuple[str, str]]):
        self.table: dict[tuple[str, ...], set[str]] = {}
        for phrase, key in phrases:
            words = tuple(normalise(phrase))
            if words:
                self.table.setdefault(words, set()).add(key)
        self.longest = min(MAX_PHRASE_WORDS, max((len(w) for w in self.table), default=0))

    def find(self, text: str) -> set[str]:
        words, out, i = normalise(text), set(), 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                keys = self.table.get(tuple(words[i : i + n]))
                if keys:
                    out |= keys
                    i += n
                    break
            else:
                i += 1
        return out


class GoLexicon:
    """Maps text to GO ids of one aspect via names and synonyms; propagates to ancestors."""

    def __init__(self, ontology):
        self.go = ontology
        pairs = [(name, go_id) for go_id, name in ontology.names.items()]
        pairs += [(syn, go_id) for go_id, syns in ontology.synonyms.items() for syn in syns]
        self.matcher = PhraseMatcher(pairs)

    def terms(self, text: str, aspect: str | None = None) -> set[str]:
        """GO ids named in ``text`` (names, synonyms, literal ids), of ``aspect`` when given."""
        found = self.matcher.find(text) | {t for t in _GO_ID.findall(text) if t in self.go.names}
        return {t for t in found if aspect is None or self.go.aspects.get(t) == aspect}

    def propagate(self, terms: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for t in terms:
            out.add(t)
            out |= self.go.ancestors(t)
        return out

    def propagate_scores(self, scores: dict[str, float]) -> dict[str, float]:
        """Every ancestor gets the highest score of its descendants (CAFA's consistency rule)."""
        out: dict[str, float] = {}
        for term, score in scores.items():
            for t in (term, *self.go.ancestors(term)):
                out[t] = max(out.get(t, 0.0), score)
        return out


ASPECT_ROOTS = frozenset({"GO:0003674", "GO:0008150", "GO:0005575"})  # MF, BP, CC


def roots(ontology) -> set[str]:
    """The three aspect roots and every parentless term (GO.db adds an "all" node above the roots);
    CAFA does not score them."""
    return set(ASPECT_ROOTS) | {t for t in ontology.names if not ontology.parents.get(t)}


def information_accretion(annotations: Sequence[set[str]], parents: dict[str, set[str]]) -> dict[str, float]:
    """IA(t) = -log2(#proteins with t / #proteins with all parents of t), annotations already propagated."""
    counts = Counter(t for terms in annotations for t in terms)
    ia: dict[str, float] = {}
    for term, n in counts.items():
        ps = parents.get(term, set())
        n_parents = sum(1 for terms in annotations if ps <= terms) if ps else len(annotations)
        ia[term] = -math.log2(n / n_parents) if n_parents else 0.0
    return ia


def protein_curves(truth: dict[str, set[str]], predicted: dict[str, dict[str, float]],
                   ia: dict[str, float] | None = None, thresholds: Sequence[float] = THRESHOLDS,
                   exclude: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per protein (rows) and threshold (columns): true positives, predicted terms, true terms, and the IA
    of missed and of false terms. Proteins whose true set is empty (after ``exclude``) are skipped."""
    proteins = [p for p, terms in truth.items() if terms - exclude]
    shape = (len(proteins), len(thresholds))
    tp, n_pred, ru, mi = (np.zeros(shape) for _ in range(4))
    n_true = np.zeros(len(proteins))
    for i, p in enumerate(proteins):
        true = truth[p] - exclude
        n_true[i] = len(true)
        scores = {t: s for t, s in predicted.get(p, {}).items() if t not in exclude}
        for j, thr in enumerate(thresholds):
            pred = {t for t, s in scores.items() if s >= thr}
            tp[i, j] = len(pred & true)
            n_pred[i, j] = len(pred)
            if ia is not None:
                ru[i, j] = sum(ia.get(x, 0.0) for x in true - pred)
                mi[i, j] = sum(ia.get(x, 0.0) for x in pred - true)
    return {"tp": tp, "n_pred": n_pred, "n_true": n_true, "ru": ru, "mi": mi,
            "thresholds": np.asarray(thresholds, dtype=float), "has_ia": ia is not None}


def curve_summary(c: dict, rows: np.ndarray | None = None) -> dict:
    """Fmax (threshold, precision, recall, coverage at it) and Smin from :func:`protein_curves` arrays,
    over the proteins ``rows`` (all by default; a bootstrap passes a resample)."""
    rows = np.arange(len(c["n_true"])) if rows is None else rows
    out: dict = {"n": int(len(rows))}
    if not len(rows):
        return out
    tp, n_pred, n_true = c["tp"][rows], c["n_pred"][rows], c["n_true"][rows]
    covered = n_pred > 0  # [P, T]
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = np.where(covered.any(0), np.nansum(np.where(covered, tp / n_pred, 0), 0) / covered.sum(0), 0.0)
        rc = (tp / n_true[:, None]).mean(0)
        f = np.where(pr + rc > 0, 2 * pr * rc / (pr + rc), 0.0)
    j = int(np.argmax(f))
    out.update(fmax=float(f[j]), threshold=float(c["thresholds"][j]) if f[j] > 0 else None,
               precision=float(pr[j]), recall=float(rc[j]), coverage=float(covered[:, j].mean()))
    if c["has_ia"]:
        out["smin"] = float(np.hypot(c["ru"][rows].mean(0), c["mi"][rows].mean(0)).min())
    return out


def cafa_scores(truth: dict[str, set[str]], predicted: dict[str, dict[str, float]],
                ia: dict[str, float] | None = None, thresholds: Sequence[float] = THRESHOLDS,
                exclude: frozenset[str] = frozenset()) -> dict:
    """Fmax (with threshold, precision, recall, coverage) and Smin (when ``ia`` is given); see the module
    docstring. ``truth``: protein -> propagated true terms; ``predicted``: protein -> propagated term ->
    score; ``exclude``: terms not scored (the roots)."""
    return curve_summary(protein_curves(truth, predicted, ia, thresholds, exclude))


def ec_numbers(text: str) -> list[str]:
    """EC numbers in order of appearance, as ``a.b.c.d`` strings (``-`` for unspecified fields)."""
    return [".".join(m) for m in _EC.findall(text)]


def ec_level_match(prediction: str, reference: str) -> dict[int, bool | None]:
    """Level k (1-4) -> whether the first predicted EC number agrees with a reference EC on its first k
    fields; None when no reference EC specifies level k."""
    refs = [r.split(".") for r in ec_numbers(reference)]
    preds = ec_numbers(prediction)
    first = preds[0].split(".") if preds else None
    out: dict[int, bool | None] = {}
    for k in range(1, 5):
        specified = [r for r in refs if "-" not in r[:k]]
        out[k] = None if not specified else bool(first) and any(first[:k] == r[:k] for r in specified)
    return out


def entity_f1(pairs: Sequence[tuple[set[str], set[str]]]) -> dict:
    """Micro precision/recall/F1 over (predicted, reference) entity sets; items with no reference entity
    are skipped; ``no_entity``: items whose prediction names none."""
    pairs = [(p, r) for p, r in pairs if r]
    tp = sum(len(p & r) for p, r in pairs)
    n_pred = sum(len(p) for p, _ in pairs)
    n_ref = sum(len(r) for _, r in pairs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"n": len(pairs), "precision": precision, "recall": recall, "f1": f1,
            "no_entity": sum(1 for p, _ in pairs if not p)}
