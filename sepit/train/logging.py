"""Per-run metrics log (JSONL) and loss-curve plot (PNG), written beside the stage's output folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback


class JsonlLogger(TrainerCallback):
    """Appends every Trainer log record (loss, component losses, lr, grad norm) to ``metrics.jsonl``.

    Only the main process writes. On resume, records at or past the resumed step are dropped first so the
    file holds one record per step.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= state.global_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(metrics_path: str | Path, png_path: str | Path, title: str) -> Path | None:
    """Plot every ``*loss*`` series against the step; returns the PNG path (None if nothing to plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for key, value in r.items():
            if "loss" in key and key != "train_loss" and isinstance(value, int | float) and math.isfinite(value):
                series.setdefault(key, []).append((r["step"], float(value)))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, points in sorted(series.items()):
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, label=key, marker="." if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)
