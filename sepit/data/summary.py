"""Build summary (``summary.json``): counts per task, category and split, structure coverage, skips."""

from __future__ import annotations

from collections import Counter
from typing import Any


class BuildStats:
    """Counts of a build, accumulated batch by batch (protein parts and instruction items)."""

    def __init__(self) -> None:
        self.proteins = self.with_plddt = 0
        self.kinds: Counter[str] = Counter()
        self.items = 0
        self.tasks: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.splits: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()

    def add_proteins(self, sources: list[str], has_plddt: list[bool]) -> None:
        self.proteins += len(sources)
        self.kinds.update(s.split(":")[0] for s in sources if s)
        self.with_plddt += sum(has_plddt)

    def add_part(self, table: Any) -> None:
        """A protein part (Arrow table with ``structure_source`` and ``plddt`` columns)."""
        import pyarrow.compute as pc

        has = pc.greater(pc.list_value_length(table.column("plddt")), 0).to_pylist()
        self.add_proteins(table.column("structure_source").to_pylist(), has)

    def add_items(self, items: list[dict]) -> None:
        self.items += len(items)
        for i in items:
            self.tasks[i["task"]] += 1
            self.categories[f"{i['task']}/{i['category']}"] += 1
            self.splits[i["split"]] += 1
            if i["task"] == "closed" and i["answer"] in ("yes", "no"):
                self.closed[i["answer"]] += 1

    def summary(self, splits: dict[str, str], skips: Any, cfg: Any) -> dict:
        """Summary dict of a build (``skips`` is a :class:`sepit.data.build.SkipLog`)."""
        with_structure = sum(self.kinds.values())
        return {
            "proteins": self.proteins,
            "instructions": self.items,
            "per_task": dict(sorted(self.tasks.items())),
            "per_category": dict(sorted(self.categories.items())),
            "per_split": dict(sorted(self.splits.items())),
            "proteins_per_split": dict(sorted(Counter(splits.values()).items())),
            "closed_answers": dict(sorted(self.closed.items())),
            "structure_coverage": {
                "with_structure": with_structure,
                "fraction": round(with_structure / max(1, self.proteins), 4),
                "by_kind": dict(sorted(self.kinds.items())),
                "with_plddt": self.with_plddt,
            },
            "skipped": dict(sorted(skips.counts.items())),
            "skipped_examples": skips.examples,
            "split": {"method": cfg.split, "identity": cfg.identity, "seed": cfg.seed},
            "go_negatives": (f"exclude ancestors of the protein's terms ({cfg.go_ontology})"
                             if getattr(cfg, "go_ontology", None) else "exclude the protein's own terms only"),
        }


def make_summary(proteins: list[dict], items: list[dict], splits: dict[str, str], skips: Any,
                 cfg: Any) -> dict:
    """Summary dict of a build from in-memory rows (``skips`` is a :class:`sepit.data.build.SkipLog`)."""
    stats = BuildStats()
    stats.add_proteins([p["structure_source"] for p in proteins], [p["plddt"] is not None for p in proteins])
    stats.add_items(items)
    return stats.summary(splits, skips, cfg)


def format_summary(summary: dict) -> str:
    """Human-readable text of a summary dict."""
    cov = summary["structure_coverage"]
    lines = [
        f"proteins: {summary['proteins']}   instructions: {summary['instructions']}",
        f"split: {summary['split']['method']} (identity {summary['split']['identity']}, seed"
        f" {summary['split']['seed']})",
        f"structures: {cov['with_structure']}/{summary['proteins']} ({100 * cov['fraction']:.1f}%)"
        f" by kind {cov['by_kind']}, with pLDDT {cov['with_plddt']}",
        *_split_report(summary.get("split_report") or {}),
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


def _split_report(report: dict) -> list[str]:
    """Lines on clusters and split checks (builds made before these were reported have none)."""
    lines = []
    if "largest_cluster" in report:
        lines.append(f"clusters: {report['clusters']} ({report['method']}), largest {report['largest_cluster']}"
                     f" proteins ({100 * report['largest_cluster_share']:.2f}% of all)")
    check = report.get("exact_check")
    if check:
        lines.append(f"exact check of {check['sampled']} held-out proteins vs {check['against_training']} training"
                     f" ones: {check['above_threshold']} above the threshold"
                     + "".join(f", {v} vs training proteins of {k.split('_vs_')[1].replace('_', ' ')}"
                               for k, v in check.items() if k.startswith("above_threshold_vs_")))
    return lines


def _inline(counts: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items()) or "-"
