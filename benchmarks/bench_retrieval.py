"""Retrieval speed: reference index build time and size, and one query's latency, MMseqs2 beside pyopal.

    python benchmarks/bench_retrieval.py --dataset runs/demo/dataset [--large /tmp/sp2014.tsv.gz --large-n 50000]

Part 1: the demo dataset's training split (``sepit index build``), queried with test proteins (one query per
call, as ``sepit ask``). Part 2 (``--large``): the first N proteins of a UniProt TSV export (e.g. Swiss-Prot 2014
from ``../shared/tools/swissprot2014_tsv.sh``, never committed) as the reference, queried with proteins from
beyond those N. Also reports how often the two backends agree on the top hit. Writes results/retrieval.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from machine import LoadWatch  # benchmarks/machine.py (the script's folder is on sys.path)

from sepit.retrieval.index import Entry, ReferenceIndex, build_index, write_index

HERE = Path(__file__).resolve().parent
GO_COLUMNS = {"go_mf": "Gene Ontology (molecular function)", "go_bp": "Gene Ontology (biological process)",
              "go_cc": "Gene Ontology (cellular component)"}


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (mmseqs), user + system: less sensitive to load."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def latencies(index: ReferenceIndex, queries: dict[str, str], k: int = 3) -> tuple[list[float], dict]:
    """(wall, CPU) seconds per single-query call, and the hits."""
    times, hits = [], {}
    for name, seq in queries.items():
        start, cpu = time.perf_counter(), cpu_seconds()
        hits[name] = index.search({name: seq}, k, exclude_self=True, max_evalue=1.0)[name]
        times.append((time.perf_counter() - start, cpu_seconds() - cpu))
    return times, hits


def agreement(a: dict, b: dict) -> str:
    both = [q for q in a if a[q] and b[q]]
    same = sum(a[q][0].accession == b[q][0].accession for q in both)
    return f"{same}/{len(both)}"


def tsv_entries(path: str, start: int, n: int) -> list[Entry]:
    out = []
    with gzip.open(path, "rt") as fh:
        for i, row in enumerate(csv.DictReader(fh, delimiter="\t")):
            if i < start:
                continue
            if len(out) == n:
                break
            labels = {k: [re.sub(r"\s*\[GO:\d+\]$", "", t.strip()) for t in row[col].split(";") if t.strip()]
                      for k, col in GO_COLUMNS.items() if row.get(col)}
            out.append(Entry(row["Entry"], row["Sequence"], labels=labels))
    return out


def row(name: str, n: int, build_s: float, size: float, times: list[tuple]) -> str:
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return (f"| {name} | {n:,} | {build_s:.1f} | {size:.1f} | {statistics.median(wall):.2f} | "
            f"{statistics.median(cpu):.2f} | {max(wall):.2f} | {len(times)} |")


def demo_part(dataset: str, n_queries: int, tmp: Path) -> list[str]:
    from sepit.data.store import DatasetStore

    store = DatasetStore(dataset)
    test = sorted(set(store.instructions("test")["accession"]))[:n_queries]
    queries = {a: store.protein(a).sequence for a in test}
    lines, hits = [], {}
    for method in ("opal", "mmseqs"):
        start = time.perf_counter()
        folder = build_index(dataset, tmp / f"demo-{method}", "train", method=method)
        build_s = time.perf_counter() - start
        index = ReferenceIndex(folder, method=method)
        times, hits[method] = latencies(index, queries)
        lines.append(row(f"demo train split, {method}", len(index), build_s, folder_mb(folder), times))
    return lines + ["", f"Top hit identical between the backends: {agreement(hits['opal'], hits['mmseqs'])} "
                        "demo test proteins with hits in both."]


def large_part(tsv: str, n: int, n_queries: int, tmp: Path, opal_queries: int, plain: bool = True) -> list[str]:
    """``plain``: also time MMseqs2 without the precomputed k-mer index (minutes per query at 485k)."""
    entries = tsv_entries(tsv, 0, n)
    queries = {e.accession: e.sequence for e in tsv_entries(tsv, n, n_queries)}
    if len(entries) < n or not queries:
        raise SystemExit(f"{tsv}: {len(entries)} proteins for the reference and {len(queries)} queries after them; "
                         f"--large-n must leave --queries proteins of the file unused")
    start = time.perf_counter()
    folder = write_index(tmp / "large", entries, {"fingerprint": "bench", "split": ["train"]}, method="mmseqs")
    build_s = time.perf_counter() - start
    lines = []
    if plain:
        mm = ReferenceIndex(folder, method="mmseqs")
        mm_times, _ = latencies(mm, queries)
        lines.append(row(f"{n:,} Swiss-Prot 2014, mmseqs", len(mm), build_s, folder_mb(folder), mm_times))
    start = time.perf_counter()
    folder2 = write_index(tmp / "large-idx", entries, {"fingerprint": "bench", "split": ["train"]}, method="mmseqs",
                          mmseqs_index=True)
    idx_s = time.perf_counter() - start
    idx = ReferenceIndex(folder2, method="mmseqs")
    idx_times, mm_hits = latencies(idx, queries)
    lines.append(row(f"{n:,} Swiss-Prot 2014, mmseqs + precomputed k-mer index (memory-mapped)", len(idx), idx_s,
                     folder_mb(folder2), idx_times))
    idx.searcher("mmseqs").db_load_mode = 0  # before: MMseqs2's default reads the k-mer index on every call
    read_times, read_hits = latencies(idx, queries)
    lines.append(row(f"{n:,} Swiss-Prot 2014, the same, index read per call (--db-load-mode 0, before)", len(idx),
                     idx_s, folder_mb(folder2), read_times))
    shutil.rmtree(folder2)
    same3 = sum(len({h.accession for h in mm_hits[q]} & {h.accession for h in read_hits[q]}) for q in queries)
    lines += ["", f"Top-3 hits shared between the two load modes: {same3}/{sum(len(h) for h in read_hits.values())}.",
              ""]
    few = dict(list(queries.items())[:opal_queries])
    opal = ReferenceIndex(folder, method="opal")
    start = time.perf_counter()
    opal.searcher("opal")
    load_s = time.perf_counter() - start
    opal_times, opal_hits = latencies(opal, few)
    lines.append(row(f"{n:,} Swiss-Prot 2014, opal (database load {load_s:.1f} s)", len(opal), build_s,
                     folder_mb(folder), opal_times))
    lines += ["", f"Top hit identical between the backends: {agreement({q: mm_hits[q] for q in few}, opal_hits)} "
                  "large-reference queries with hits in both.",
              f"Queries with at least one hit (E <= 1): {sum(bool(h) for h in mm_hits.values())}/{len(mm_hits)}."]
    return lines


def main() -> None:
    watch = LoadWatch()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="built dataset (the demo's)")
    ap.add_argument("--queries", type=int, default=10, help="single queries timed per backend")
    ap.add_argument("--large", default=None, help="UniProt TSV(.gz) for the large reference")
    ap.add_argument("--large-n", type=int, default=50000, help="reference proteins taken from --large")
    ap.add_argument("--opal-queries", type=int, default=3, help="pyopal queries against the large reference")
    ap.add_argument("--no-plain", action="store_true",
                    help="skip MMseqs2 without its precomputed k-mer index on the large reference")
    ap.add_argument("--out", default=str(HERE / "results" / "retrieval.md"))
    args = ap.parse_args()
    head = ["| reference | proteins | build s | size MiB | median wall s / query | median CPU s / query "
            "| max wall s | queries |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        lines = head + demo_part(args.dataset, args.queries, Path(tmp))
        if args.large:
            lines += ["", *head, *large_part(args.large, args.large_n, args.queries, Path(tmp), args.opal_queries,
                                             not args.no_plain)]
    text = "\n".join(["<!-- bench_retrieval -->", "## Retrieval: index build and one query (bench_retrieval.py)",
                      f"`python benchmarks/bench_retrieval.py --dataset {args.dataset}"
                      + (f" --large {args.large} --large-n {args.large_n}" if args.large else "")
                      + (" --no-plain" if args.no_plain else "") + "`. "
                      "One query per call (as `sepit ask`), k=3, E <= 1, one thread. " + watch.note(), "", *lines,
                      "<!-- /bench_retrieval -->", ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
