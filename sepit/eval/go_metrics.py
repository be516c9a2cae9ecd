"""Ontology- and entity-level metrics of one model's predictions (see :mod:`sepit.eval.ontology`).

:class:`OntologyContext` holds what scoring needs beyond the predictions: the GO lexicon, the information
accretion per aspect (from the training proteins' GO labels of a built dataset) and the subcellular-location
vocabulary. :func:`ontology_metrics` scores one model's rows:

- ``go``: per aspect (MF/BP/CC, from open items of category ``go_mf``/``go_bp``/``go_cc``): Fmax, Smin,
  coverage, with ``unmapped_predictions`` / ``unmapped_references`` counts and a bootstrap 95% interval of Fmax;
- ``entity_f1``: GO terms (GO items), EC numbers (any open item whose reference names one), locations
  (subcellular-location items);
- ``ec_levels``: EC exact match at levels 1-4 (open ``ec`` items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sepit.eval.ontology import (
    ASPECT_OF_CATEGORY,
    GoLexicon,
    PhraseMatcher,
    curve_summary,
    ec_level_match,
    ec_numbers,
    entity_f1,
    information_accretion,
    protein_curves,
    roots,
)
from sepit.eval.records import Prediction

LOCATION_CATEGORY = "subcellular_location"
_SEGMENT_SPLIT = r"[;.,\n]"


@dataclass
class OntologyContext:
    lexicon: GoLexicon | None = None
    ia: dict[str, dict[str, float]] = field(default_factory=dict)  # aspect -> term -> IA
    locations: set[str] = field(default_factory=set)
    bootstrap: int = 200
    seed: int = 0

    @classmethod
    def build(cls, go_path: str | None, data_dir=None, bootstrap: int = 200) -> OntologyContext:
        """GO lexicon from ``go_path`` (OBO or GO.sqlite; None: no GO scoring); IA and location vocabulary
        from the training split of the built dataset ``data_dir`` (None: no Smin, locations from references)."""
        lexicon = None
        if go_path:
            from sepit.data.go import GeneOntology

            lexicon = GoLexicon(GeneOntology.load(go_path))
        ctx = cls(lexicon=lexicon, bootstrap=bootstrap)
        if data_dir is not None:
            ctx.add_dataset(data_dir)
        return ctx

    def add_dataset(self, data_dir) -> None:
        from sepit.data.store import DatasetStore

        store = DatasetStore(data_dir)
        accessions = sorted(set(store.instructions("train")["accession"]))
        labels = [store.labels(a) for a in accessions]
        self.locations |= {loc for lab in labels for loc in lab.get(LOCATION_CATEGORY, [])}
        if self.lexicon is None:
            return
        for category, aspect in ASPECT_OF_CATEGORY.items():
            annotated = [self.lexicon.propagate(self.lexicon.terms("; ".join(lab[category]), aspect))
                         for lab in labels if lab.get(category)]
            if annotated:
                self.ia[aspect] = information_accretion(annotated, self.lexicon.go.parents)


def _item_terms(ctx: OntologyContext, row: Prediction, aspect: str) -> dict[str, float]:
    """Predicted GO terms of one row with scores (``term_scores`` if present, else 1.0 per mapped term)."""
    lex = ctx.lexicon
    scored = row.extra.get("term_scores")
    if scored:
        out: dict[str, float] = {}
        for key, score in scored.items():
            for term in ({key} if key in lex.go.names else lex.terms(key, aspect)):
                if lex.go.aspects.get(term) == aspect:
                    out[term] = max(out.get(term, 0.0), float(score))
        return out
    return dict.fromkeys(lex.terms(row.text, aspect), 1.0)


def _bootstrap_interval(curves: dict, n: int, seed: int) -> list[float] | None:
    size = len(curves["n_true"])
    if n <= 0 or size < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [curve_summary(curves, rng.integers(0, size, size))["fmax"] for _ in range(n)]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def go_aspect_scores(ctx: OntologyContext, rows: Sequence[Prediction], aspect: str) -> dict:
    lex = ctx.lexicon
    truth: dict[str, set[str]] = {}
    predicted: dict[str, dict[str, float]] = {}
    unmapped_pred = unmapped_ref = 0
    for row in rows:
        ref = lex.terms(row.answer, aspect)
        unmapped_ref += not ref
        truth.setdefault(row.accession, set()).update(lex.propagate(ref))
        pred = _item_terms(ctx, row, aspect)
        unmapped_pred += not pred
        merged = predicted.setdefault(row.accession, {})
        for term, score in lex.propagate_scores(pred).items():
            merged[term] = max(merged.get(term, 0.0), score)
    curves = protein_curves(truth, predicted, ctx.ia.get(aspect), exclude=frozenset(roots(lex.go)))
    out = curve_summary(curves)
    out.update(n_items=len(rows), unmapped_predictions=unmapped_pred, unmapped_references=unmapped_ref)
    interval = _bootstrap_interval(curves, ctx.bootstrap, ctx.seed)
    if interval:
        out["fmax_ci95"] = interval
    return out


def _segments(text: str) -> list[str]:
    import re

    return [s.strip() for s in re.split(_SEGMENT_SPLIT, text) if s.strip()]


def ontology_metrics(rows: Sequence[Prediction], ctx: OntologyContext) -> dict:
    """GO Fmax/Smin per aspect, Entity-F1 per entity type, EC exact match per level (module docstring)."""
    opens = [r for r in rows if r.is_open]
    out: dict = {}
    entity: dict = {}
    if ctx.lexicon is not None:
        go_rows = {a: [r for r in opens if ASPECT_OF_CATEGORY.get(r.category) == a]
                   for a in ASPECT_OF_CATEGORY.values()}
        out["go"] = {a: go_aspect_scores(ctx, rs, a) for a, rs in go_rows.items() if rs}
        pairs = [(ctx.lexicon.terms(r.text, a), ctx.lexicon.terms(r.answer, a))
                 for a, rs in go_rows.items() for r in rs]
        entity["go"] = entity_f1(pairs)
    entity["ec"] = entity_f1([(set(ec_numbers(r.text)), set(ec_numbers(r.answer))) for r in opens])
    loc_rows = [r for r in opens if r.category == LOCATION_CATEGORY]
    if loc_rows:
        vocab = ctx.locations | {s for r in loc_rows for s in _segments(r.answer)}
        matcher = PhraseMatcher((v, " ".join(v.lower().split())) for v in vocab)
        entity["location"] = entity_f1([(matcher.find(r.text), matcher.find(r.answer)) for r in loc_rows])
    out["entity_f1"] = {k: v for k, v in entity.items() if v["n"]}
    levels = [ec_level_match(r.text, r.answer) for r in opens if r.category == "ec"]
    if levels:
        out["ec_levels"] = {}
        for k in range(1, 5):
            scored = [lv[k] for lv in levels if lv[k] is not None]
            out["ec_levels"][str(k)] = {"n": len(scored), "accuracy": float(np.mean(scored)) if scored else None}
    return out
