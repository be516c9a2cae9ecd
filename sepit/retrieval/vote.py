"""Closed-set answers from the model and the evidence together (kNN-LM style: Khandelwal et al. 2020).

The evidence votes for the options its hits carry, each hit weighted by its identity; the vote is smoothed
toward uniform by ``prior_weight`` (in identity units: three hits at 20% identity move it only part of the way,
one at 95% almost all of it) and mixed with the model's option probabilities:

    p(option) = (1 - w) * p_model(option) + w * p_evidence(option)

- multiple choice: a hit votes for each option among its closed-set labels of the question's category;
- yes/no about a label: a hit carrying the label votes "yes"; a hit annotated in the category without it votes
  "no"; a hit with no annotation in the category abstains. The label is the item's (``label``) or, for a user's
  question, the longest label of a hit that the question names.

No hit votes (no evidence, or nothing annotated in the category): the model's probabilities stand. The answer
cites the shown hits that voted for the chosen option (none for "no": absence is not a source).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sepit.prompts import cite


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def asked_label(question: str, evidence: Sequence) -> str:
    """The longest label of any hit that the question names (whole words), or ""."""
    hay = f" {_norm(question)} "
    names = {lab for ev in evidence for lab in ev.labels if f" {_norm(lab)} " in hay and _norm(lab)}
    return max(names, key=len, default="")


def _is_yes_no(choices: Sequence[str]) -> bool:
    return sorted(c.lower() for c in choices) == ["no", "yes"]


def supporters(evidence: Sequence, choices: Sequence[str], label: str = "") -> dict[str, list]:
    """Option -> the hits that vote for it (see the module docstring)."""
    out: dict[str, list] = {c: [] for c in choices}
    if _is_yes_no(choices):
        yes, no = (next(c for c in choices if c.lower() == x) for x in ("yes", "no"))
        want = _norm(label)
        if not want:
            return out
        for ev in evidence:
            have = {_norm(x) for x in ev.labels}
            if want in have:
                out[yes].append(ev)
            elif have:
                out[no].append(ev)
        return out
    for ev in evidence:
        have = {_norm(x) for x in ev.labels}
        for c in choices:
            if _norm(c) in have:
                out[c].append(ev)
    return out


def evidence_vote(evidence: Sequence, choices: Sequence[str], label: str = "", prior_weight: float = 1.0
                  ) -> dict[str, float] | None:
    """P_evidence(option): identity-weighted votes smoothed toward uniform; None when no hit votes."""
    support = supporters(evidence, choices, label)
    weight = {c: sum(ev.identity for ev in hits) for c, hits in support.items()}
    total = sum(weight.values())
    if total <= 0:
        return None
    return {c: (weight[c] + prior_weight / len(choices)) / (total + prior_weight) for c in choices}


def mix(model: dict[str, float], vote: dict[str, float] | None, weight: float) -> dict[str, float]:
    if vote is None or weight <= 0:
        return dict(model)
    return {c: round((1 - weight) * p + weight * vote[c], 6) for c, p in model.items()}


def grounded_choice(model_probs: dict[str, float], item: dict, evidence: Sequence | None, weight: float,
                    prior_weight: float = 1.0) -> dict:
    """The closed-set answer of an item with evidence: ``text`` (the option, then the citations of the hits that
    voted for it), ``choice``, ``option_probs`` (mixed), ``model_option_probs``, ``evidence_option_probs``."""
    choices = list(item["choices"])
    label = str(item.get("label") or "") or (asked_label(item["question"], evidence or []) if
                                              _is_yes_no(choices) else "")
    vote = evidence_vote(evidence or [], choices, label, prior_weight)
    probs = mix(model_probs, vote, weight)
    choice = max(probs, key=probs.get)
    voters = supporters(evidence or [], choices, label)[choice]
    cited = [] if choice.lower() == "no" else [ev.accession for ev in voters]
    text = " ".join([choice, *(cite(a) for a in dict.fromkeys(cited))])
    return {"text": text, "choice": choice, "option_probs": probs, "model_option_probs": model_probs,
            "evidence_option_probs": vote}
