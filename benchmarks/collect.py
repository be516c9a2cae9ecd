"""Concatenate benchmarks/results/*.md into benchmarks/RESULTS.md (one section per part)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["data", "encoder", "p1_650m", "bridge", "padding", "collate", "eval", "generate", "inference", "decoding",
         "serve", "serve_adversarial", "ask_fasta", "retrieval", "scale", "scale_notes"]  # others follow, by name


def main() -> None:
    parts = sorted((HERE / "results").glob("*.md"), key=lambda p: ((ORDER + [p.stem]).index(p.stem), p.stem))
    header = ("# Benchmark results\n\nMeasured on the project's 2-core CPU machine (no GPU was available to "
              "these sessions). Each section names its command. Several runs shared the CPU with other jobs; the "
              "sections say where that made absolute times noisy (ratios are measured side by side). Regenerated "
              "by `python benchmarks/collect.py` from benchmarks/results/*.md: edit those, not this file.\n")
    body = "\n\n".join(p.read_text().strip() for p in parts)
    (HERE / "RESULTS.md").write_text(header + "\n" + body + "\n")


if __name__ == "__main__":
    main()
