"""Swiss-Prot flat-file parsing: sepit.data.uniprot.parse_flatfile vs Bio.SwissProt.parse, same files, one run.

Both read the same gzipped real files (../shared/data/swissprot_flatfiles, 200 entries), also concatenated
``--repeat`` times into one larger file; best of ``--rounds`` timings. Note: sepit also cleans texts and
builds typed GO/feature/xref records; Biopython only splits fields.

    python benchmarks/bench_flatfile.py [--rounds 5] [--repeat 10] [--out benchmarks/results/data.md]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

from Bio import SwissProt

from sepit.data.uniprot import parse_flatfile
from sepit.io_utils import open_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "swissprot_flatfiles"


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_section(out: Path, name: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- name -->`` markers of ``out``."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = out.read_text() if out.is_file() else "# Data pipeline benchmarks\n"
    if begin in old:
        old = old[: old.index(begin)] + old[old.index(end) + len(end):].lstrip("\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(old.rstrip("\n") + f"\n\n{begin}\n{text.strip()}\n{end}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timings per parser (best is kept)")
    ap.add_argument("--repeat", type=int, default=10, help="copies of the real entries in the big file")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data.md")
    args = ap.parse_args()
    files = sorted(DATA.glob("*.dat.gz"))
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.dat.gz"
        raw = b"".join(gzip.decompress(f.read_bytes()) for f in files)
        big.write_bytes(gzip.compress(raw * args.repeat))
        rows = []
        for path in [*files, big]:
            n = sum(1 for _ in parse_flatfile(path))
            ours = best(lambda p=path: sum(1 for _ in parse_flatfile(p)), args.rounds)
            bio = best(lambda p=path: sum(1 for _ in SwissProt.parse(open_text(p))), args.rounds)
            name = path.name if path != big else f"all files x{args.repeat}"
            rows.append(f"| {name} | {n} | {n / ours:,.0f} | {n / bio:,.0f} | {bio / ours:.2f}x |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "## Flat-file parsing (bench_flatfile.py)",
        f"Best of {args.rounds}, one process, gzipped input. sepit also cleans texts and builds typed records.",
        "", "| file | entries | sepit entries/s | Bio.SwissProt entries/s | speed-up |", "|---|---|---|---|---|",
        *rows])
    write_section(args.out, "bench_flatfile", text)


if __name__ == "__main__":
    main()
