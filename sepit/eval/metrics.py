"""Score predictions files: open-ended text metrics per category and overall, closed-set accuracy/calibration.

:class:`Scorers` builds every scorer once (ROUGE, METEOR's WordNet, the BERTScore model); :func:`evaluate`
scores all open-ended items of all models in one pass (BERTScore in batches) and then averages per model and
per category. Results are a plain dict (written as ``metrics.json``); scores are fractions in [0, 1].

Optional inputs add: ``ontology`` (:class:`sepit.eval.go_metrics.OntologyContext`): GO Fmax/Smin per aspect,
Entity-F1, EC match per level; ``identity`` (accession -> highest identity to the training split,
:mod:`sepit.eval.identity_bins`): every summary again per identity bin (``bins``). Headline numbers carry 95%
intervals: Wilson for accuracies, a seeded bootstrap over items for mean item scores (ROUGE-L, BERTScore).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from sepit.eval.closed_set import closed_metrics
from sepit.eval.records import Prediction
from sepit.eval.text_metrics import RougeScorer, corpus_bleu, paper_bleu_items
from sepit.resources import MINILM


@dataclass
class EvalConfig:
    bertscore: bool = True
    bertscore_model: str = MINILM  # offline name, local HF folder or hub id
    bertscore_layers: int | None = None  # None: the model's last layer
    bertscore_batch_size: int = 16  # pairs per batch; 16 measured best on CPU (benchmarks), raise on GPU
    meteor: bool = True
    paper_bleu: bool = True  # per-item BLEU on the BERTScore model's WordPiece tokens, averaged
    ece_bins: int = 10
    device: str | None = None
    bootstrap: int = 1000  # resamples for the 95% intervals of mean item scores (0: none)
    seed: int = 0


class Scorers:
    """All scorers, built once per evaluation."""

    def __init__(self, config: EvalConfig | None = None) -> None:
        self.config = config = config or EvalConfig()
        self.rouge = RougeScorer()
        self.meteor = None
        self.bert = None
        self.wordpiece = None
        if config.meteor:
            from sepit.eval.text_metrics import MeteorScorer

            self.meteor = MeteorScorer()
        if config.bertscore:
            from sepit.eval.bertscore import BertScore

            self.bert = BertScore(
                config.bertscore_model, config.bertscore_layers, config.bertscore_batch_size, config.device
            )
            self.wordpiece = self.bert.wordpiece
        elif config.paper_bleu:
            from transformers import AutoTokenizer

            from sepit.resources import resolve_model

            self.wordpiece = AutoTokenizer.from_pretrained(resolve_model(config.bertscore_model)).tokenize

    def item_scores(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-item scores for every metric that is averaged over items."""
        out: dict[str, list[float]] = dict(self.rouge.items(hyps, refs))
        if self.meteor is not None:
            out["meteor"] = self.meteor.items(hyps, refs)
        if self.bert is not None:
            out.update(self.bert.score(hyps, refs))
        if self.config.paper_bleu and self.wordpiece is not None:
            paper = paper_bleu_items(hyps, refs, self.wordpiece)
            out.update({f"paper_{k}": v for k, v in paper.items()})
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}


CI_METRICS = ("rougeL", "bertscore_f1")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """Wilson score interval of a binomial proportion (95% for z = 1.96)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def bootstrap_mean_interval(values: np.ndarray, n: int, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap 95% interval of the mean (``n`` resamples, seeded)."""
    if n <= 0 or len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _open_summary(rows: list[Prediction], index: np.ndarray, items: dict[str, np.ndarray],
                  bootstrap: int = 0, seed: int = 0) -> dict:
    summary: dict = {"n": len(rows)}
    summary.update(corpus_bleu([r.text for r in rows], [r.answer for r in rows]))
    summary.update({k: float(v[index].mean()) for k, v in items.items()})
    for key in CI_METRICS:
        if key in items and bootstrap:
            summary[f"{key}_ci95"] = bootstrap_mean_interval(items[key][index], bootstrap, seed)
    return summary


def _group(rows: list[Prediction], key) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[key(row)].append(i)
    return dict(sorted(groups.items()))


def _with_interval(summary: dict) -> dict:
    if summary.get("accuracy") is not None:
        summary["accuracy_ci95"] = wilson_interval(round(summary["accuracy"] * summary["n"]), summary["n"])
    if summary.get("accuracy_likelihood") is not None:
        n = summary["n_scored"]
        summary["accuracy_likelihood_ci95"] = wilson_interval(round(summary["accuracy_likelihood"] * n), n)
    return summary


def _closed_summary(rows: list[Prediction], bins: int) -> tuple[dict, dict]:
    overall = _with_interval(closed_metrics(rows, bins))
    per_cat = {}
    for cat, idx in _group(rows, lambda r: r.category).items():
        sub = closed_metrics([rows[i] for i in idx], bins)
        sub.pop("reliability", None)
        per_cat[cat] = sub
    return overall, per_cat


def _identity_summary(rows: list[Prediction]) -> dict | None:
    marked = [r for r in rows if "identity" in r.extra]
    if not marked:
        return None
    hits = [r.identity for r in marked if r.identity is not None]
    return {
        "n_items": len(marked),
        "n_hit": len(hits),
        "n_fallback": len(marked) - len(hits),
        "mean_identity": float(np.mean(hits)) if hits else None,
    }


def _model_summary(open_rows, open_index, items, closed_rows, bins, config: EvalConfig | None = None,
                   ontology=None) -> dict:
    config = config or EvalConfig(bootstrap=0)
    out: dict = {"n_open": len(open_rows), "n_closed": len(closed_rows)}
    if open_rows:
        index = np.asarray(open_index)
        out["open"] = _open_summary(open_rows, index, items, config.bootstrap, config.seed)
        out["open_per_category"] = {
            cat: _open_summary([open_rows[i] for i in idx], index[idx], items)
            for cat, idx in _group(open_rows, lambda r: r.category).items()
        }
    if closed_rows:
        out["closed"], out["closed_per_category"] = _closed_summary(closed_rows, bins)
    identity = _identity_summary(open_rows + closed_rows)
    if identity:
        out["identity"] = identity
    if ontology is not None:
        from sepit.eval.go_metrics import ontology_metrics

        out["ontology"] = ontology_metrics(open_rows + closed_rows, ontology)
    return out


def _bin_summaries(open_rows, open_index, items, closed_rows, config, ontology, identity) -> dict:
    """The model summary per identity bin (without per-category tables or intervals of Fmax)."""
    from sepit.eval.identity_bins import BIN_LABELS, bin_of

    def label(row) -> str:
        return bin_of(identity[row.accession]) if row.accession in identity else "unknown"

    quiet = replace(config, bootstrap=0)
    light = None if ontology is None else replace(ontology, bootstrap=0)
    out = {}
    for name in (*BIN_LABELS, "unknown"):
        sel = [i for i, r in enumerate(open_rows) if label(r) == name]
        closed = [r for r in closed_rows if label(r) == name]
        if not sel and not closed:
            continue
        summary = _model_summary([open_rows[i] for i in sel], [open_index[i] for i in sel], items, closed,
                                 config.ece_bins, quiet, light)
        for key in ("open_per_category", "closed_per_category"):
            summary.pop(key, None)
        summary.get("closed", {}).pop("reliability", None)
        summary["n_proteins"] = len({r.accession for r in [open_rows[i] for i in sel] + closed})
        out[name] = summary
    return out


def _notes(rows: list[Prediction], models: dict) -> list[str]:
    notes = []
    ids = {m: frozenset(r.id for r in rows if r.model == m) for m in models}
    if len(set(ids.values())) > 1:
        sizes = ", ".join(f"{m}: {len(s)}" for m, s in ids.items())
        notes.append(f"models were scored on different item sets ({sizes}); compare with care")
    for name, summary in models.items():
        ident = summary.get("identity")
        if ident and ident["n_fallback"]:
            notes.append(
                f"{name}: {ident['n_fallback']} of {ident['n_items']} items had no training protein "
                "with that category among the hits and got the most common training answer of the "
                "category (identity null)"
            )
        unparsed = summary.get("closed", {}).get("unparsed")
        if unparsed:
            notes.append(f"{name}: {unparsed} closed-set answers could not be parsed (counted wrong)")
    return notes


def evaluate(rows: Sequence[Prediction], scorers: Scorers | None = None, ontology=None,
             identity: dict[str, float] | None = None) -> dict:
    """Metrics per model (``model`` field), overall and per category; see module docstring."""
    scorers = scorers or Scorers()
    config = scorers.config
    rows = list(rows)
    open_rows = [r for r in rows if r.is_open]
    items = scorers.item_scores([r.text for r in open_rows], [r.answer for r in open_rows])
    models = {}
    for name in sorted({r.model for r in rows}):
        open_index = [i for i, r in enumerate(open_rows) if r.model == name]
        mine = [open_rows[i] for i in open_index]
        closed = [r for r in rows if r.model == name and not r.is_open]
        models[name] = _model_summary(mine, open_index, items, closed, config.ece_bins, config, ontology)
        if identity is not None:
            models[name]["bins"] = _bin_summaries(mine, open_index, items, closed, config, ontology, identity)
    settings = asdict(config)
    if scorers.bert is not None:
        settings["bertscore_layers"] = scorers.bert.num_layers
    settings["ontology"] = ontology is not None and ontology.lexicon is not None
    settings["identity_bins"] = identity is not None
    return {"models": models, "settings": settings, "notes": _notes(rows, models)}
