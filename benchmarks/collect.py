"""Concatenate benchmarks/results/*.md into benchmarks/RESULTS.md (one section per part)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["data", "encoder", "bridge", "padding", "eval", "serve", "retrieval"]


def main() -> None:
    parts = sorted((HERE / "results").glob("*.md"), key=lambda p: (ORDER + [p.stem]).index(p.stem))
    header = ("# Benchmark results\n\nMeasured on the project's 2-core CPU machine (no GPU was available to "
              "these sessions). Each section names its command. Several runs shared the CPU with other jobs; the "
              "sections say where that made absolute times noisy (ratios are measured side by side).\n")
    body = "\n\n".join(p.read_text().strip() for p in parts)
    (HERE / "RESULTS.md").write_text(header + "\n" + body + "\n")


if __name__ == "__main__":
    main()
