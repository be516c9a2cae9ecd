"""Evidence for an answer: the hits shown to the model with the annotation used, and the check of the
citations in the answer against them (a cited accession that is not in the evidence is flagged, never a source).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sepit.prompts import cited_accessions, format_context
from sepit.retrieval.index import Entry, ReferenceIndex
from sepit.retrieval.search import Hit

UNIPROT_URL = "https://www.uniprot.org/uniprotkb/{}/entry"
# fields of the compact summary (captions and categories the hit has no annotation for), in this order
SUMMARY_FIELDS = ("function", "subcellular_location", "family", "catalytic_activity", "go_mf", "go_bp", "go_cc",
                  "keywords")
SUMMARY_NAMES = {"subcellular_location": "location", "catalytic_activity": "activity", "go_mf": "GO MF",
                 "go_bp": "GO BP", "go_cc": "GO CC"}


@dataclass(frozen=True)
class Evidence:
    """One hit shown to the model: where it is, how close it is, and the annotation text used."""

    accession: str
    identity: float
    query_coverage: float
    target_coverage: float
    evalue: float
    bits: float
    annotation: str
    labels: tuple[str, ...] = ()  # the hit's closed-set labels in the question's category

    @property
    def url(self) -> str:
        return UNIPROT_URL.format(self.accession)

    def to_dict(self) -> dict:
        return {"accession": self.accession, "identity": round(self.identity, 4),
                "query_coverage": round(self.query_coverage, 4), "target_coverage": round(self.target_coverage, 4),
                "evalue": float(f"{self.evalue:.3g}"), "bits": round(self.bits, 1), "annotation": self.annotation,
                "labels": list(self.labels), "url": self.url}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def annotation_for(entry: Entry, category: str | None, limit: int = 160) -> str:
    """The hit's annotation relevant to the question's category; a compact summary of several fields for
    captions, unknown categories and categories the hit is not annotated in."""
    if category and category != "caption":
        if entry.annotations.get(category):
            return _clip(entry.annotations[category], limit)
        if entry.labels.get(category):
            return _clip("; ".join(entry.labels[category]), limit)
    parts = []
    for name in SUMMARY_FIELDS:
        text = entry.annotations.get(name) or "; ".join(entry.labels.get(name, []))
        if text:
            parts.append(f"{SUMMARY_NAMES.get(name, name)}: {_clip(text, limit // 2)}")
    if not parts and entry.annotations.get("caption"):
        parts.append(entry.annotations["caption"])
    return _clip("; ".join(parts), limit) if parts else "no annotation"


def annotated_first(index: ReferenceIndex, hits: list[Hit], category: str | None, k: int) -> list[Hit]:
    """The ``k`` hits to show for a question of ``category``: hits annotated in that category first (in rank
    order), then the others; captions and unknown categories take the top ``k``."""
    if not category or category == "caption":
        return hits[:k]
    entries = index.entries

    def annotated(h: Hit) -> bool:
        entry = entries[h.accession]
        return bool(entry.annotations.get(category) or entry.labels.get(category))

    return ([h for h in hits if annotated(h)] + [h for h in hits if not annotated(h)])[:k]


def evidence_for(index: ReferenceIndex, hits: list[Hit], category: str | None, limit: int = 160) -> list[Evidence]:
    out = []
    for h in hits:
        entry = index.entries[h.accession]
        out.append(Evidence(h.accession, h.identity, h.query_coverage, h.target_coverage, h.evalue, h.bits,
                            annotation_for(entry, category, limit), tuple(entry.labels.get(category or "", []))))
    return out


def prompt_fields(evidence: list[Evidence] | None) -> dict:
    """An item's retrieval fields: ``context`` (the rendered evidence; None without retrieval) and ``citable``
    (the accessions a citation may name, :mod:`sepit.retrieval.constrain`; None without retrieval)."""
    return {"context": context_for(evidence),
            "citable": None if evidence is None else [e.accession for e in evidence]}


def context_for(evidence: list[Evidence] | None) -> str | None:
    """The prompt context of an item: None without retrieval, else the rendered evidence (maybe 'none found')."""
    return None if evidence is None else format_context(evidence)


@dataclass
class Citations:
    """Accessions cited in an answer, split into those backed by the evidence and those that are not."""

    supported: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def check_citations(text: str, evidence: list[Evidence] | None) -> Citations:
    shown = {e.accession for e in evidence or []}
    out = Citations()
    for acc in cited_accessions(text):
        (out.supported if acc in shown else out.unsupported).append(acc)
    return out


def trained_settings(model_dir) -> dict | None:
    """A model folder's ``retrieval.json`` (how it was trained to see evidence), or None."""
    path = Path(model_dir) / "retrieval.json"
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class Retriever:
    """Evidence for questions about proteins: search an index, keep ``k`` hits, pick their annotations."""

    index: ReferenceIndex
    k: int = 3
    max_evalue: float | None = 1.0
    annotation_chars: int = 160
    vote_weight: float = 0.5  # closed-set: weight of the evidence vote mixed with the model (sepit.retrieval.vote)
    pool: int = 12  # hits searched; the k shown prefer those annotated in the question's category

    def __post_init__(self) -> None:
        self.pool = max(self.pool, self.k)

    @classmethod
    def from_settings(cls, index: ReferenceIndex, trained: dict | None = None, **overrides) -> Retriever:
        """A retriever that shows hits as the model was trained to see them (``trained``: the model folder's
        ``retrieval.json``: top_k, annotation_chars, max_evalue, vote_weight); ``overrides`` that are not None win
        (``k``, ``vote_weight``, ...)."""
        trained = trained or {}
        settings = {"k": trained.get("top_k"), **{k: trained.get(k) for k in ("annotation_chars", "max_evalue",
                                                                               "vote_weight", "pool")}}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(index, **{k: v for k, v in settings.items() if v is not None})

    def closed_answer(self, model_probs: dict[str, float], item: dict, evidence: list[Evidence] | None) -> dict:
        """The closed-set answer from the model's option probabilities and the evidence's vote
        (:func:`sepit.retrieval.vote.grounded_choice`)."""
        from sepit.retrieval.vote import grounded_choice

        return grounded_choice(model_probs, item, evidence, self.vote_weight)

    def evidence(self, items: list[dict], exclude_self: bool = False) -> list[list[Evidence]]:
        """Per item (``sequence``, ``category``, optional ``accession``): the evidence shown to the model.
        ``exclude_self``: a protein never retrieves its own accession (evaluating a dataset)."""
        queries: dict[str, str] = {}
        keys = []
        for n, it in enumerate(items):
            key = it.get("accession") if exclude_self and it.get("accession") else f"query-{n}"
            queries.setdefault(key, it["sequence"])
            keys.append(key)
        hits = self.index.search(queries, self.pool, exclude_self=exclude_self, max_evalue=self.max_evalue)
        return [evidence_for(self.index, annotated_first(self.index, hits[key], it.get("category"), self.k),
                             it.get("category"), self.annotation_chars)
                for key, it in zip(keys, items, strict=True)]


def attach_evidence(retriever: Retriever | None, item: dict, category: str | None = None,
                    enabled: bool = True) -> list[Evidence] | None:
    """Evidence for one model item (server requests): sets ``item["context"]``; None without retrieval."""
    if retriever is None or not enabled:
        return None
    evidence = retriever.evidence([{**item, "category": category}])[0]
    item.update(prompt_fields(evidence))
    return evidence


def grounding(text: str, evidence: list[Evidence] | None) -> dict:
    """Response fields of an answer: ``evidence``, ``citations`` (backed by the evidence) and
    ``unsupported_citations`` (flagged, never sources); {} without retrieval."""
    if evidence is None:
        return {}
    cited = check_citations(text, evidence)
    out = {"evidence": [e.to_dict() for e in evidence], "citations": cited.supported,
           "unsupported_citations": cited.unsupported}
    if not evidence:
        out["evidence_note"] = "no annotated homolog found in the reference index"
    return out
