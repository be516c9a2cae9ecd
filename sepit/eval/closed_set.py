"""Closed-set evaluation: answer extraction from generated text, accuracy, calibration (DESIGN.md section 4).

Extraction is paper-compatible and looks at the generated continuation only. In order:
1. the whole answer equals an option (case, punctuation and a leading "answer:" ignored);
2. an option letter: "B", "B)", "(B)", "B.", "B:", "option B", "answer is B" (A = first choice);
3. yes/no questions: a leading yes/no word ("Yes, ...", "No.") decides; otherwise negation is read in
   context: the answer is cut into clauses (at , ; . and "but", "whereas", "while", "although"), the clause
   that names what the question asks about (all words of the item's label or of a quoted term of the
   question; else the clause naming the question's last content word, most shared content words first)
   decides: "no" if it holds a negation cue ("not", "no", "never", "lacks", "without", "does not", ...), else
   "yes" ("it binds heme, not iron" is yes for heme; "it does not
   bind heme" is no). Without such a clause, the first yes/no word or variant anywhere;
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
_LEADING = re.compile(rf"^\W*(?:(?P<yes>{_YES})|(?P<no>no|not|false|incorrect|never))\b", re.I)
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|cannot|can't|doesn't|don't|didn't|isn't|aren't|wasn't|won't|"
    r"lacks?|lacking|without|absent|unlikely|false|incorrect)\b|n't\b", re.I)
_CLAUSE = re.compile(r"[,;.:!?()]|\b(?:but|whereas|while|although|though|however|rather than|instead of)\b",
                     re.I)
_QUOTED = re.compile(r"['\"‘“]([^'\"’”]{2,})['\"’”]")
_STOP = frozenset(
    "a an the this that these it its is are was be been being do does did has have had of in on at to by for "
    "with from as and or protein proteins any there which what member part involved described describe "
    "keyword located found assigned contain contains belong belongs".split())


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


def parse_choice(prediction: str, choices: Sequence[str], question: str = "", label: str = "") -> str | None:
    """The option chosen by a generated answer, or None when none can be extracted. ``question`` and
    ``label`` (what a yes/no question asks about) let yes/no answers be read in context (rule 3)."""
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
        answer = _yes_no_in_context(body, question, label)
        return None if answer is None else yes_no[answer]
    return _by_text(body, choices)


def _content(text: str) -> list[str]:
    return [w for w in _norm(text).split() if w not in _STOP and len(w) > 1]


def _same_word(a: str, b: str) -> bool:
    """Equal, or one a short inflection of the other ("bind"/"binds", "membrane"/"membranes")."""
    short, long_ = sorted((a, b), key=len)
    return a == b or (len(short) >= 4 and long_.startswith(short) and len(long_) - len(short) <= 3)


def _subject_clause(clauses: list[str], question: str, label: str) -> str | None:
    """The clause naming what is asked: the label or a quoted term (all its words), else the clause sharing
    the most content words with the question (ties: the first)."""
    quoted = _QUOTED.search(question)
    subject = label or (quoted.group(1) if quoted else "")
    if subject:
        words = _content(subject)
        for clause in clauses:
            have = _content(clause)
            if words and all(any(_same_word(w, h) for h in have) for w in words):
                return clause
    asked = _content(question)  # the asked object usually ends the question: it must be named, and later
    if not asked:  # words weigh more
        return None
    scored = []
    for i, clause in enumerate(clauses):
        have = _content(clause)
        hits = [k for k, w in enumerate(asked) if any(_same_word(w, h) for h in have)]
        if len(asked) - 1 in hits:
            scored.append((sum(1 + k / len(asked) for k in hits), -i, clause))
    return max(scored)[2] if scored else None


def _yes_no_in_context(body: str, question: str = "", label: str = "") -> str | None:
    """"yes", "no" or None (see the module docstring, rule 3)."""
    lead = _LEADING.match(body)
    if lead:
        return "yes" if lead.group("yes") else "no"
    if question or label:
        clauses = [c.strip() for c in _CLAUSE.split(body) if c and c.strip()]
        clause = _subject_clause(clauses, question, label)
        if clause is not None:
            return "no" if _NEGATION.search(clause) else "yes"
    match = _YES_NO.search(body)
    return None if match is None else ("yes" if match.group("yes") else "no")


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
    if not row.text.strip() and row.option_probs:
        return max(row.option_probs, key=row.option_probs.get)
    return parse_choice(row.text, row.choices, row.question, str(row.extra.get("label") or ""))


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
