"""How a question is shown to the LLM, shared by training, prediction, ``ask``, the baselines and the server so
that a model sees at inference exactly the prompt form it was trained on.

With retrieval, :func:`format_context` renders the evidence (annotated homologs) above the question, each hit
in the one fixed citation form ``[UniProt:ACC]`` followed by its annotation, then its identity, coverage and
e-value (the annotation right after the citation: the form an answer that cites and draws on a hit takes)."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

YES_NO = ("yes", "no")
CITATION = "[UniProt:{}]"
CITATION_RE = re.compile(r"\[UniProt:([A-Za-z0-9_.\-]+)\]")
CONTEXT_HEAD = "Annotated homologs in the reference (cite as [UniProt:accession]):"
NO_HITS = "Annotated homologs in the reference: none found."


def cite(accession: str) -> str:
    return CITATION.format(accession)


def format_context(evidence: Sequence) -> str:
    """The evidence block: one line per hit (objects with accession, identity, query_coverage, evalue,
    annotation), or a line saying that the search found nothing."""
    if not evidence:
        return NO_HITS
    lines = [CONTEXT_HEAD]
    for n, ev in enumerate(evidence, 1):
        lines.append(f"{n}. {cite(ev.accession)} {ev.annotation} ({ev.identity:.0%} identity, "
                     f"{ev.query_coverage:.0%} cover, E={ev.evalue:.0e})")
    return "\n".join(lines)


def format_question(question: str, choices: list[str] | None = None, context: str | None = None) -> str:
    """Question text for the user turn (the processor adds the protein placeholder).

    Yes/no questions get an explicit instruction; multiple-choice questions list lettered options. ``context``
    (from :func:`format_context`) goes above the question; None keeps the prompt of the model without retrieval.
    """
    question = question.strip()
    if choices:
        if [c.lower() for c in choices] == list(YES_NO):
            question = question if question.lower().endswith("yes or no.") else f"{question} Answer yes or no."
        else:
            letters = string.ascii_uppercase
            options = "\n".join(f"{letters[i]}) {c}" for i, c in enumerate(choices))
            question = f"{question}\nOptions:\n{options}\nAnswer with one of the options."
    return question if context is None else f"{context}\n\nQuestion: {question}"


def strip_citations(text: str) -> str:
    """The answer without its ``[UniProt:ACC]`` citations (what text and ontology metrics score: a citation is
    a pointer to evidence, not content)."""
    return " ".join(CITATION_RE.sub(" ", text or "").split())


def cited_accessions(text: str) -> list[str]:
    """Accessions cited as ``[UniProt:ACC]`` in a text, in order, without repeats."""
    return list(dict.fromkeys(CITATION_RE.findall(text or "")))
