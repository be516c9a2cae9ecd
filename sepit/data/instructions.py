"""Instruction items (DESIGN section 3.2): caption, open-ended QA and closed-set QA, deterministic for a seed.

Closed-set yes/no questions come in balanced pairs: for every "yes" item on a protein's own label there is a
"no" item on a label drawn from other proteins that this protein does not carry (compared case-insensitively;
GO labels are not propagated through the ontology, so a negative can only be ruled out against the
protein's own annotations). For GO categories, when a :class:`~sepit.data.go.GeneOntology` is given, the
names of all ancestors (is_a, part_of) of the protein's GO terms are excluded too, since UniProt lists only the
most specific terms. Multiple-choice items have shuffled options and exactly one correct answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from sepit.data.annotations import GO_CATEGORY, caption, closed_labels, open_answers
from sepit.data.questions import CAPTION, CHOICE, EC_CLASSES, OPEN, YES_NO
from sepit.data.records import ProteinRecord

YES, NO = "yes", "no"


@dataclass
class InstructionConfig:
    """Knobs of :func:`make_instructions`. ``yes_no_pairs``: yes+no pairs per protein and category;
    ``num_choices``: options per multiple-choice item (fewer when the label pool is small, never below 2)."""

    seed: int = 0
    yes_no_pairs: int = 1
    num_choices: int = 4
    caption: bool = True
    open: bool = True
    closed: bool = True


def label_pools(records: Iterable[ProteinRecord]) -> dict[str, list[str]]:
    """Category -> sorted list of every label seen (the source of negatives and distractors)."""
    pools: dict[str, set[str]] = {}
    for rec in records:
        for category, labels in closed_labels(rec).items():
            pools.setdefault(category, set()).update(labels)
    pools["ec_class"] = set(EC_CLASSES.values())
    return {k: sorted(v) for k, v in pools.items()}


def make_instructions(records: list[ProteinRecord], config: InstructionConfig | None = None,
                      pools: dict[str, list[str]] | None = None, ontology=None) -> list[dict]:
    """All items for ``records`` (without ``split``), in record order, deterministic for ``config.seed``.

    ``ontology``: a :class:`~sepit.data.go.GeneOntology`; GO negatives then avoid implied terms as well."""
    config = config or InstructionConfig()
    pools = pools if pools is not None else label_pools(records)
    items: list[dict] = []
    for rec in records:
        rng = random.Random(f"{config.seed}:{rec.accession}")
        items.extend(protein_items(rec, rng, pools, config, ontology))
    seen: set[str] = set()
    for item in items:
        assert item["id"] not in seen, item["id"]
        seen.add(item["id"])
    return items


def protein_items(rec: ProteinRecord, rng: random.Random, pools: dict[str, list[str]],
                  config: InstructionConfig, ontology=None) -> list[dict]:
    """Items of one protein: one caption, one open item per annotation type, closed-set items."""
    answers = open_answers(rec)
    out: list[dict] = []
    text = caption(rec, answers)
    if config.caption and text:
        out.append(_item(rec, "caption", "caption", rng.choice(CAPTION), text))
    if config.open:
        for category, answer in answers.items():
            out.append(_item(rec, "open", category, rng.choice(OPEN[category]), answer))
    if config.closed:
        labels = closed_labels(rec)
        implied = sorted(ontology.implied_names(t.id for t in rec.go)) if ontology is not None else []
        for category, values in labels.items():
            banned = [*values, *implied] if category in GO_CATEGORY.values() else values
            if category in YES_NO:
                out.extend(_yes_no(rec, category, values, banned, pools.get(category, []), rng, config))
            if category in CHOICE:
                out.extend(_choice(rec, category, values, banned, pools.get(category, []), rng, config))
    for i, item in enumerate(out):
        item["id"] = f"{rec.accession}:{i}:{item['task']}:{item['category']}"
    return out


def _yes_no(rec: ProteinRecord, category: str, values: list[str], banned: list[str], pool: list[str],
            rng: random.Random, config: InstructionConfig) -> list[dict]:
    out = []
    positives = rng.sample(values, min(config.yes_no_pairs, len(values)))
    negatives = sample_negatives(pool, banned, len(positives), rng)
    for pos, neg in zip(positives, negatives, strict=False):  # pairs only: balanced by construction
        for value, answer in ((pos, YES), (neg, NO)):
            question = rng.choice(YES_NO[category]).format(value=value)
            out.append(_item(rec, "closed", category, question, answer, [YES, NO], label=value))
    return out


def _choice(rec: ProteinRecord, category: str, values: list[str], banned: list[str], pool: list[str],
            rng: random.Random, config: InstructionConfig) -> list[dict]:
    correct = rng.choice(values)
    distractors = sample_negatives(pool, banned, config.num_choices - 1, rng)
    if not distractors:
        return []
    options = [correct, *distractors]
    rng.shuffle(options)
    return [_item(rec, "closed", category, rng.choice(CHOICE[category]), correct, options)]


def sample_negatives(pool: list[str], positives: list[str], k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` distinct labels from ``pool`` that match none of ``positives`` (the protein's labels and
    what they imply; case-insensitive)."""
    banned = {p.lower() for p in positives}
    out: list[str] = []
    for _ in range(20 * k):
        if len(out) == k or not pool:
            break
        value = rng.choice(pool)
        if value.lower() not in banned:
            banned.add(value.lower())
            out.append(value)
    return out


def _item(rec: ProteinRecord, task: str, category: str, question: str, answer: str,
          choices: list[str] | None = None, label: str = "") -> dict:
    """One item; ``label``: the annotation a yes/no question asks about ("" otherwise)."""
    assert not choices or answer in choices
    return {"id": "", "accession": rec.accession, "task": task, "category": category, "question": question,
            "answer": answer, "choices": list(choices or []), "label": label}
