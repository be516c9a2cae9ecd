"""Plot stage-0 denoising-loss curves (issue 13.3) from training metrics files (``<run>/stage0/metrics.jsonl``).

Usage: python benchmarks/denoise_curve.py --run before=PATH.jsonl --run after=PATH.jsonl --out docs/results/x.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curve(path: Path) -> tuple[list[int], list[float]]:
    """(steps, denoise_loss) of the logged training steps (rows without ``denoise_loss`` are skipped)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "denoise_loss" in r]
    return [r["step"] for r in rows], [r["denoise_loss"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="LABEL=metrics.jsonl (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="stage 0, demo preset: coordinate-denoising loss")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for spec in args.run:
        label, _, path = spec.partition("=")
        steps, losses = read_curve(Path(path))
        ax.plot(steps, losses, marker="o", ms=3, label=label)
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="trivial (predict 0)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("denoising MSE")
    ax.set_title(args.title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
