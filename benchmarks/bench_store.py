"""Random access by accession: DatasetStore (Arrow, memory-mapped) vs one .npy file per protein, one run.

Proteins: lengths of real Swiss-Prot sequences (../shared/data uniprot_tsv), random C-alpha coordinates
[L, 3] float32 and pLDDT [L]. Each access returns the coordinates (and pLDDT) of one random accession.
The .npy side opens two files per protein (coords, pLDDT), as a per-protein layout would.

    python benchmarks/bench_store.py [--proteins 5000] [--reads 5000] [--out benchmarks/results/data.md]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_flatfile import write_section

from sepit.data.store import DatasetStore, write_store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uniprot_tsv" / "swissprot2014_go_sample40k.tsv.gz"


def proteins(n: int, seed: int) -> list[dict]:
    with gzip.open(DATA, "rt") as fh:
        rows = [(r["Entry"], r["Sequence"]) for r, _ in zip(csv.DictReader(fh, delimiter="\t"), range(n), strict=False)]
    rng = np.random.default_rng(seed)
    return [{"accession": a, "sequence": s, "coords": rng.normal(size=(len(s), 3)).astype(np.float32),
             "plddt": rng.uniform(0, 100, len(s)).astype(np.float32), "structure_source": "bench"} for a, s in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proteins", type=int, default=5000)
    ap.add_argument("--reads", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data.md")
    args = ap.parse_args()
    rows = proteins(args.proteins, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_store(root / "ds", rows, [], {})
        (root / "npy").mkdir()
        for r in rows:
            np.save(root / "npy" / f"{r['accession']}.coords.npy", r["coords"])
            np.save(root / "npy" / f"{r['accession']}.plddt.npy", r["plddt"])
        store = DatasetStore(root / "ds")
        order = [r["accession"] for r in random.Random(1).choices(rows, k=args.reads)]
        check = store.protein(order[0])
        assert np.array_equal(check.coords, next(r["coords"] for r in rows if r["accession"] == order[0]))
        start = time.perf_counter()
        for acc in order:
            store.protein(acc)
        arrow = (time.perf_counter() - start) / len(order)
        start = time.perf_counter()
        for acc in order:
            np.load(root / "npy" / f"{acc}.coords.npy")
            np.load(root / "npy" / f"{acc}.plddt.npy")
        npy = (time.perf_counter() - start) / len(order)
    row = f"| {args.proteins} | {args.reads} | {1e6 * arrow:.1f} | {1e6 * npy:.1f} | {npy / arrow:.1f}x |"
    print(row)
    text = "\n".join([
        "## Random access by accession (bench_store.py)",
        "Coordinates + pLDDT of one random protein per read (real sequence lengths); warm page cache.", "",
        "| proteins | reads | DatasetStore us/read | one .npy per protein us/read | speed-up |",
        "|---|---|---|---|---|", row])
    write_section(args.out, "bench_store", text)


if __name__ == "__main__":
    main()
