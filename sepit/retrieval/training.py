"""Retrieval during training: neighbours of every training protein precomputed once per dataset and index
(cached in the run folder), a deterministic per-item choice of what evidence it sees, and answers that cite.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from sepit.errors import ConfigError
from sepit.io_utils import atomic_file
from sepit.prompts import cite, format_context
from sepit.retrieval.config import RetrievalSpec
from sepit.retrieval.evidence import Evidence, annotated_first, evidence_for
from sepit.retrieval.index import ReferenceIndex, build_index
from sepit.retrieval.search import Hit

DEFAULT_CAP = 0.3  # identity cap when the dataset's split is random


def training_index(spec: RetrievalSpec, dataset: Path, output_dir: Path) -> ReferenceIndex:
    """The training split's index: ``spec.index``, else built once into ``<output_dir>/index``."""
    folder = Path(spec.index) if spec.index else Path(output_dir) / "index"
    if not spec.index and not (folder / "meta.json").is_file():
        build_index(dataset, folder, "train", method=spec.method)
    index = ReferenceIndex(folder, spec.method)
    index.check_dataset(dataset)
    if index.splits != ["train"]:
        raise ConfigError(f"retrieval.index {folder} holds split(s) {index.splits}; training uses an index of the "
                          "training split only")
    return index


def precompute_neighbours(index: ReferenceIndex, accessions: list[str], spec: RetrievalSpec,
                          cache: Path) -> dict[str, list[Hit]]:
    """Top ``spec.pool`` hits of every training protein (never itself), searched once and cached."""
    key = f"{index.meta['fingerprint']}:{len(index)}:{spec.pool}:{spec.max_evalue}:{spec.method}"
    saved = json.loads(cache.read_text()) if cache.is_file() else {}
    known = {a: [Hit(**h) for h in hs] for a, hs in saved.get("hits", {}).items()} if saved.get("key") == key else {}
    todo = [a for a in accessions if a not in known]
    if todo:  # only proteins not searched before (stage 2 reuses stage 1's searches)
        known.update(index.search({a: index.entries[a].sequence for a in todo}, spec.pool, exclude_self=True,
                                  max_evalue=spec.max_evalue))
        with atomic_file(cache) as fh:
            json.dump({"key": key, "hits": {a: [vars(h) for h in hs] for a, hs in known.items()}}, fh)
    return {a: known[a] for a in accessions}


def _share(item_id: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the item and the seed (the same in every epoch and on resume)."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# words too common in annotations (and the summary's field names) to say that an answer rests on a hit
_COMMON = frozenset("the and for with from that this which are its into has have been not can also may their "
                    "other than via function location activity family protein".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _COMMON}


def citing_hit(row: dict, evidence: list[Evidence], min_overlap: float) -> str | None:
    """The hit an open or caption answer rests on: the one whose shown annotation shares the largest part of
    its content words with the answer (overlap coefficient |A & W| / min(|A|, |W|), at least ``min_overlap``;
    ties: the higher-ranked hit); closed-set answers stay exactly one option (no citation)."""
    if row["task"] == "closed":
        return None
    answer = _content_words(row["answer"])
    best, cited = 0.0, None
    for ev in evidence:
        words = _content_words(ev.annotation.removesuffix("..."))
        if answer and words:
            overlap = len(answer & words) / min(len(answer), len(words))
            if overlap >= min_overlap and overlap > best:
                best, cited = overlap, ev.accession
    return cited


class TrainingContext:
    """Row (id, accession, task, category, answer) -> (prompt context, citation that opens the answer or "")."""

    def __init__(self, index: ReferenceIndex, neighbours: dict[str, list[Hit]], spec: RetrievalSpec,
                 identity_cap: float, seed: int = 0):
        self.index, self.neighbours, self.spec, self.cap, self.seed = index, neighbours, spec, identity_cap, seed

    def hits(self, row: dict) -> list[Hit]:
        pool = self.neighbours.get(row["accession"], [])
        draw = _share(str(row["id"]), self.seed)
        if draw < self.spec.no_context_share:
            return []
        if draw < self.spec.no_context_share + self.spec.below_cap_share:
            pool = [h for h in pool if h.identity < self.cap]
        return annotated_first(self.index, pool, row.get("category"), self.spec.top_k)

    def __call__(self, row: dict) -> tuple[str, str]:
        evidence = evidence_for(self.index, self.hits(row), row.get("category"), self.spec.annotation_chars)
        cited = citing_hit(row, evidence, self.spec.cite_min_overlap) if self.spec.cite else None
        return format_context(evidence), (cite(cited) if cited else "")


def training_context(spec: RetrievalSpec, dataset: Path, output_dir: Path, accessions: list[str],
                     seed: int = 0) -> TrainingContext:
    """Everything a stage needs to train with retrieval (index, cached neighbours, identity cap)."""
    index = training_index(spec, dataset, output_dir)
    missing = [a for a in accessions if a not in index.entries]
    if missing:
        raise ConfigError(f"training proteins missing from the index {index.folder}: {', '.join(missing[:5])}")
    neighbours = precompute_neighbours(index, sorted(set(accessions)), spec, Path(output_dir) / "neighbours.json")
    cap = spec.identity_cap or index.meta.get("split_identity") or DEFAULT_CAP
    return TrainingContext(index, neighbours, spec, cap, seed)


def save_retrieval_settings(folder: Path, ctx: TrainingContext) -> None:
    """``retrieval.json`` beside the weights: the model was trained with evidence in its prompts."""
    (Path(folder) / "retrieval.json").write_text(json.dumps(
        {"trained_with_retrieval": True, "top_k": ctx.spec.top_k, "annotation_chars": ctx.spec.annotation_chars,
         "max_evalue": ctx.spec.max_evalue, "vote_weight": ctx.spec.vote_weight, "pool": ctx.spec.pool,
         "index": str(ctx.index.folder.resolve()), "identity_cap": ctx.cap}, indent=2) + "\n")
