"""Closed-set evaluation: answer extraction from generated text, accuracy, calibration (DESIGN.md section 4).

Extraction is paper-compatible and looks at the generated continuation only. In order:
1. the whole answer equals an option (case, punctuation and a leading "answer:" ignored);
2. an option letter: "B", "B)", "(B)", "B.", "B:", "option B", "answer is B" (A = first choice);
3. yes/no questions: the first yes/no word or variant ("yes", "yeah", "true", "correct" / "no", "not",
   "false", "does not", "isn't", ...);
4. option text: the option whose text occurs first (whole words; the longest option wins at one position).
Unparseable answers count as wrong and are counted separately. A blank prediction with ``option_probs``
(likelihood-only answering) counts as the most probable option.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is|:)?\s*", re.I)
_LETTER_PATTERNS = (
    re.compile(r"^\s*\(?([A-Z])\s*(?:[).:\]]|$)"),  # "B", "B)", "(B)", "B.", "B:" at the start
    re.compile(r"\(([A-Za-z])\)"),  # "(b)" anywhere
    re.compile(r"\b(?i:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])\b(?![-'])"),
)
_YES = r"yes|yeah|yep|true|correct|indeed|affirmative"
_NO = (
    r"no|not|false|incorrect|none|neither|never|cannot|can't|doesn't|does\s+not|isn't|is\s+not|"
    r"aren't|are\s+not|lacks?|unlikely"
)
_YES_NO = re.compile(rf"\b(?:(?P<yes>{_YES})|(?P<no>{_NO}))\b", re.I)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _yes_no_options(choices: Sequence[str]) -> dict[str, str] | None:
    normed = {_norm(c): c for c in choices}
    if set(normed) == {"yes", "no"}:
        return {"yes": normed["yes"], "no": normed["no"]}
    return None


def _by_letter(text: str, choices: Sequence[str]) -> str | None:
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text)
        if match:
            index = ord(match.group(1).upper()) - ord("A")
            if 0 <= index < len(choices):
                return choices[index]
    return None


def _by_text(text: str, choices: Sequence[str]) -> str | None:
    hay = f" {_norm(text)} "
    best: tuple[int, int, str] | None = None  # (position, -length, choice)
    for choice in choices:
        needle = _norm(choice)
        pos = hay.find(f" {needle} ") if needle else -1
        if pos >= 0 and (best is None or (pos, -len(needle)) < best[:2]):
            best = (pos, -len(needle), choice)
    return None if best is None else best[2]


def parse_choice(prediction: str, choices: Sequence[str]) -> str | None:
    """The option chosen by a generated answer, or None when none can be extracted."""
    choices = list(choices)
    if not choices or not prediction.strip():
        return None
    body = _PREFIX.sub("", prediction.strip())
    exact = {_norm(c): c for c in choices}
    if _norm(body) in exact:
        return exact[_norm(body)]
    yes_no = _yes_no_options(choices)
    if yes_no is None:
        letter = _by_letter(body, choices)
        if letter is not None:
            return letter
    if yes_no is not None:
        match = _YES_NO.search(body)
        return None if match is None else yes_no["yes" if match.group("yes") else "no"]
    return _by_text(body, choices)


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> float:
    """ECE: sum over equal-width confidence bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|."""
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        return float("nan")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[dict]:
    """Per equal-width bin ((lo, hi], first bin [0, hi]): count, accuracy, mean confidence."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = index == b
        count = int(sel.sum())
        out.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": count,
                "accuracy": float(ok[sel].mean()) if count else 0.0,
                "confidence": float(conf[sel].mean()) if count else 0.0,
            }
        )
    return out


def _chosen(row) -> str | None:
    """Parsed choice; a blank prediction with option_probs (likelihood-only answering) takes the argmax."""
    if not row.prediction.strip() and row.option_probs:
        return max(row.option_probs, key=row.option_probs.get)
    return parse_choice(row.prediction, row.choices)


def closed_metrics(rows: Sequence, n_bins: int = 10) -> dict:
    """Accuracy from generated text; with option_probs also likelihood accuracy, ECE and reliability bins.

    ``rows``: :class:`sepit.eval.records.Prediction` objects with task ``closed``.
    """
    parsed = [_chosen(r) for r in rows]
    out: dict = {
        "n": len(rows),
        "accuracy": float(np.mean([p == r.answer for p, r in zip(parsed, rows, strict=True)]))
        if rows
        else None,
        "unparsed": sum(p is None for p in parsed),
    }
    scored = [r for r in rows if r.option_probs]
    if scored:
        picks = [max(r.option_probs, key=r.option_probs.get) for r in scored]
        conf = [r.option_probs[p] / sum(r.option_probs.values()) for p, r in zip(picks, scored, strict=True)]
        correct = [p == r.answer for p, r in zip(picks, scored, strict=True)]
        out.update(
            n_scored=len(scored),
            accuracy_likelihood=float(np.mean(correct)),
            ece=expected_calibration_error(conf, correct, n_bins),
            reliability=reliability_bins(conf, correct, n_bins),
        )
    return out
