"""Build summary (``summary.json``): counts per task, category and split, structure coverage, skips."""

from __future__ import annotations

from collections import Counter
from typing import Any


def make_summary(proteins: list[dict], items: list[dict], splits: dict[str, str], skips: Any,
                 cfg: Any) -> dict:
    """Summary dict of a build (``skips`` is a :class:`sepit.data.build.SkipLog`)."""
    with_structure = [p for p in proteins if p["structure_source"]]
    kinds = Counter(p["structure_source"].split(":")[0] for p in with_structure)
    return {
        "proteins": len(proteins),
        "instructions": len(items),
        "per_task": dict(sorted(Counter(i["task"] for i in items).items())),
        "per_category": dict(sorted(Counter(f"{i['task']}/{i['category']}" for i in items).items())),
        "per_split": dict(sorted(Counter(i["split"] for i in items).items())),
        "proteins_per_split": dict(sorted(Counter(splits.values()).items())),
        "closed_answers": dict(sorted(Counter(i["answer"] for i in items
                                              if i["task"] == "closed" and i["answer"] in ("yes", "no"))
                                      .items())),
        "structure_coverage": {
            "with_structure": len(with_structure),
            "fraction": round(len(with_structure) / max(1, len(proteins)), 4),
            "by_kind": dict(sorted(kinds.items())),
            "with_plddt": sum(p["plddt"] is not None for p in proteins),
        },
        "skipped": dict(sorted(skips.counts.items())),
        "skipped_examples": skips.examples,
        "split": {"method": cfg.split, "identity": cfg.identity, "seed": cfg.seed},
        "go_negatives": (f"exclude ancestors of the protein's terms ({cfg.go_ontology})"
                         if getattr(cfg, "go_ontology", None) else "exclude the protein's own terms only"),
    }


def format_summary(summary: dict) -> str:
    """Human-readable text of a summary dict."""
    cov = summary["structure_coverage"]
    lines = [
        f"proteins: {summary['proteins']}   instructions: {summary['instructions']}",
        f"split: {summary['split']['method']} (identity {summary['split']['identity']}, seed"
        f" {summary['split']['seed']})",
        f"structures: {cov['with_structure']}/{summary['proteins']} ({100 * cov['fraction']:.1f}%)"
        f" by kind {cov['by_kind']}, with pLDDT {cov['with_plddt']}",
        "per task: " + _inline(summary["per_task"]),
        "per split (items): " + _inline(summary["per_split"]),
        "per split (proteins): " + _inline(summary["proteins_per_split"]),
        "closed yes/no answers: " + _inline(summary["closed_answers"]),
        "GO negatives: " + summary.get("go_negatives", "exclude the protein's own terms only"),
        "per category:",
        *(f"  {k:<40} {v}" for k, v in summary["per_category"].items()),
        f"skipped / degraded ({sum(summary['skipped'].values())}):",
        *(f"  {v:>6}  {k}" for k, v in summary["skipped"].items()),
    ]
    return "\n".join(lines)


def _inline(counts: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items()) or "-"
