"""PNG plots for the report: one grouped bar chart per metric over categories, closed-set accuracy per
category, and a reliability diagram (accuracy vs confidence per bin) for models with option likelihoods."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sepit.eval.report import PLOT_METRICS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _bars(per_model: dict[str, dict[str, float]], title: str, path: Path, order: list[str] | None = None,
          ax=None) -> None:
    """Grouped bars: categories on x (sorted, or in ``order``), one bar per model; into ``ax`` when given."""
    plt = _pyplot()
    present = {c for values in per_model.values() for c in values}
    cats = [c for c in order if c in present] if order else sorted(present)
    own = ax is None
    width = 0.8 / max(len(per_model), 1)
    if own:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cats) + 2), 4))
    x = np.arange(len(cats))
    for i, (name, values) in enumerate(per_model.items()):
        heights = [100 * values.get(c, np.nan) for c in cats]
        ax.bar(x + i * width - 0.4 + width / 2, heights, width, label=name)
    ax.set_xticks(x, cats, rotation=30, ha="right")
    ax.set_ylabel(f"{title} (x100)")
    ax.set_title(f"{title} per {'category' if order is None else 'identity bin'}")
    ax.legend(fontsize="small")
    if own:
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


BIN_METRICS = [
    ("Closed-set accuracy", lambda b: b.get("closed", {}).get("accuracy")),
    ("ROUGE-L", lambda b: b.get("open", {}).get("rougeL")),
    ("BERTScore-F1", lambda b: b.get("open", {}).get("bertscore_f1")),
    ("GO Fmax (mean of aspects)", lambda b: _mean_fmax(b)),
]


def _mean_fmax(b: dict) -> float | None:
    values = [g["fmax"] for g in b.get("ontology", {}).get("go", {}).values() if g.get("n")]
    return float(np.mean(values)) if values else None


def _bins_plot(models: dict, path: Path) -> bool:
    """One panel per main metric: identity bins on x, one bar per model (n proteins in the tick labels)."""
    from sepit.eval.identity_bins import BIN_LABELS

    order = [*BIN_LABELS, "unknown"]
    panels = []
    for title, get in BIN_METRICS:
        per_model = {n: {b: get(s) for b, s in m["bins"].items() if get(s) is not None}
                     for n, m in models.items() if m.get("bins")}
        per_model = {n: v for n, v in per_model.items() if v}
        if per_model:
            panels.append((title, per_model))
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (title, per_model) in zip(axes[0], panels, strict=True):
        _bars(per_model, title, path, order=order, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _reliability(models: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for name, m in models.items():
        bins = [b for b in m["closed"]["reliability"] if b["count"]]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            "o-",
            label=f"{name} (ECE {100 * m['closed']['ece']:.1f})",
        )
    ax.set_xlabel("confidence (probability of the chosen option)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability diagram (closed-set, likelihood scoring)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(results: dict, folder: Path) -> list[str]:
    """Write the plots into ``folder``; return their file names."""
    models = results["models"]
    names: list[str] = []
    for key, label in PLOT_METRICS:
        per_model = {
            n: {c: s[key] for c, s in m.get("open_per_category", {}).items() if key in s}
            for n, m in models.items()
        }
        per_model = {n: v for n, v in per_model.items() if v}
        if per_model:
            names.append(f"open_{key}_per_category.png")
            _bars(per_model, label, folder / names[-1])
    closed = {
        n: {c: s["accuracy"] for c, s in m.get("closed_per_category", {}).items()}
        for n, m in models.items()
        if m.get("closed_per_category")
    }
    if closed:
        names.append("closed_accuracy_per_category.png")
        _bars(closed, "Closed-set accuracy", folder / names[-1])
    if _bins_plot(models, folder / "metrics_per_identity_bin.png"):
        names.append("metrics_per_identity_bin.png")
    calibrated = {n: m for n, m in models.items() if m.get("closed", {}).get("reliability")}
    if calibrated:
        names.append("reliability.png")
        _reliability(calibrated, folder / names[-1])
    return names
