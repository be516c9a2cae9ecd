"""Swiss-Prot scale (issue 14): ``sepit data build`` wall-clock and peak RSS against the number of proteins,
structures from an AlphaFold-DB-style tarball, nearest-neighbour top-k search, training data loading.

Data: Swiss-Prot 2014-01 as a UniProt TSV (about 485k proteins with GO annotations; never committed):

    bash ../shared/tools/swissprot2014_tsv.sh /tmp/sp2014.tsv.gz
    python benchmarks/bench_scale.py --data /tmp/sp2014.tsv.gz --sizes 10000 50000 --tar-files 20000
    python benchmarks/bench_scale.py --data /tmp/sp2014.tsv.gz --sizes 100000 485000 --tar-files 100000  # long

Parts (``--parts``):
- build: for each size, a seeded random subsample of the TSV (the whole file for a size at or above its count)
  is built with ``python -m sepit data build --split homology --identity 0.3 --threads T`` in a subprocess;
  wall-clock, peak RSS (``wait4``: the largest single process of the tree, sepit or one of its MMseqs2
  children) and the sampled sum of RSS over the process tree; the build's own step timings. A log-log fit of
  time against size gives the growth exponent (plot: results/scale_growth.png).
- structures: a synthetic AlphaFold-DB-style ``.tar`` of ``.pdb.gz`` members: the shared structure files
  replicated under new accessions (``AF-<ACC>-F1-model_v4.pdb.gz``) with a TSV whose sequences are their
  chains; built with 1 and with 2 processes (``--threads``): files/s and speed-up.
- nn: MMseqs2 top-k (k=50) of ``--nn-queries`` proteins against the largest size's proteins, through the
  nearest-neighbour baseline's search path; time and peak RSS (subprocess).
- loading: random training items read from the built stores (row + memory-mapped protein lookup, what the
  collator does before tokenising) for the smallest and the largest size: items/s, ratio. Each store's files
  are first dropped from the page cache (``posix_fadvise DONTNEED``: a cold start); a first pass over
  ``--load-items`` random items, then a second pass over as many other random items in the same process.
- pipeline: the training input path itself on the same two stores, cold as above: a seeded sample of
  ``--pipe-items`` train items (``instruction_items``, the ``max_items`` path), tokenised once
  (``InstructionCollator.pretokenize``, SmolLM2's tokenizer and chat template), then a shuffled ``DataLoader``
  with ``--pipe-workers`` workers and the collator (crop, ESM tokens, coordinates, placeholder expansion),
  batch 8: preparation seconds and collated items/s; ``--pipe-repeats`` runs per size, alternating sizes,
  median reported.

Results: results/scale.json (every run, merged by key) and results/scale.md (table), collected into RESULTS.md.
Times measured while other jobs share the CPU are marked so (``--shared-load``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STRUCTURES = ROOT.parent / "shared" / "data" / "structures"


def run_measured(cmd: list[str], cwd: Path = ROOT) -> dict:
    """Run ``cmd``; wall-clock seconds, peak RSS of its largest process (wait4) and sampled tree RSS sum."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_tree = [0]
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()

    def sample() -> None:
        while proc.poll() is None:
            try:
                root = psutil.Process(proc.pid)
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                peak_tree[0] = max(peak_tree[0], total)
            except psutil.Error:
                pass
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    sampler.join(timeout=2)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{''.join(output)[-3000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "peak_tree_rss_mib": round(peak_tree[0] / 2**20, 1), "output": "".join(output)[-2000:]}


def subsample(data: Path, n: int, out: Path, seed: int = 0) -> int:
    """Seeded random ``n`` rows of the TSV (all rows when ``n`` is at least their count), header kept."""
    with gzip.open(data, "rt") as fh:
        header = fh.readline()
        rows = fh.readlines()
    if n < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
    with open(out, "w") as fh:
        fh.write(header)
        fh.writelines(rows)
    return len(rows)


def in_child(fn, *args):
    """Run ``fn(*args)`` in a fresh process, so that this process stays small: a child forked from it would
    start with its peak RSS (``ru_maxrss`` survives fork and exec)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def bench_build(args, size: int, work: Path) -> dict:
    tsv = work / f"sp{size}.tsv"
    n = in_child(subsample, args.data, size, tsv)
    out = work / f"ds{size}"
    cmd = [sys.executable, "-m", "sepit", "data", "build", "--input", str(tsv), "--out", str(out), "--overwrite",
           "--split", args.split, "--identity", "0.3", "--threads", str(args.threads), "--no-progress",
           "--go-ontology", "none", "--split-check-sample", str(args.split_check_sample),
           "--split-check-max-seqs", str(args.split_check_max_seqs),
           *(["--split-check-sensitivity", str(args.split_check_sensitivity)] if args.split_check_sensitivity else [])]
    res = run_measured(cmd)
    summary = json.loads((out / "summary.json").read_text())
    res.update(proteins=n, instructions=summary["instructions"], timings_s=summary.get("timings_s"),
               sepit_peak_rss_mib=summary.get("peak_rss_mib"),
               split_report=summary.get("split_report"), threads=args.threads,
               split_check_sample=args.split_check_sample)
    return res


def _search_text(search: dict) -> str:
    """Rounds and links of the search check; with its settings and the proteins searched per round when the
    build recorded them (builds before the own-side exclusion searched all proteins, 1000 candidates)."""
    if not search:
        return "-"
    text = f"{search['rounds']} rounds, {search['pairs_added']:,} links"
    if "searched_per_round" in search:
        per_round = " + ".join(f"{n:,}" for n in search["searched_per_round"])
        text += (f"; -s {search['sensitivity']}, {search['max_seqs']} candidates; searched {per_round}"
                 f" in {sum(search['seconds_per_round']):.0f} s")
    return text


def _accession(i: int) -> str:
    """A UniProt-shaped accession ([OPQ][0-9][A-Z0-9]{3}[0-9]) for index i (unique up to 14 million)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    i, last = divmod(i, 10)
    i, mid = divmod(i, 36**3)
    i, first = divmod(i, 10)
    m = "".join(digits[(mid // 36**k) % 36] for k in (2, 1, 0))
    return f"{'OPQ'[i % 3]}{first}{m}{last}"


def synthetic_tarball(n_files: int, work: Path) -> tuple[Path, Path]:
    """AFDB-style tarball of ``n_files`` members replicated from the shared structures, and its TSV."""
    from sepit.data.structure import read_chains

    sources = []
    for path in sorted(STRUCTURES.rglob("*.pdb*")):
        try:
            chains = read_chains(path)
        except Exception:  # noqa: BLE001 - a source that sepit cannot read is just not replicated
            continue
        best = max(chains.values(), key=lambda c: len(c.sequence))
        if len(best.sequence) >= 20 and "X" not in best.sequence:
            raw = path.read_bytes()
            sources.append((gzip.compress(gzip.decompress(raw) if path.suffix == ".gz" else raw, 1),
                            best.sequence))
    tar, tsv = work / f"afdb{n_files}.tar", work / f"afdb{n_files}.tsv"
    with tarfile.open(tar, "w") as tf, open(tsv, "w") as fh:
        fh.write("Entry\tSequence\tGene Ontology (molecular function)\n")
        for i in range(n_files):
            data, seq = sources[i % len(sources)]
            acc = _accession(i)
            info = tarfile.TarInfo(f"AF-{acc}-F1-model_v4.pdb.gz")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            fh.write(f"{acc}\t{seq}\tprotein binding [GO:0005515]\n")
    return tar, tsv


def bench_structures(args, work: Path) -> dict:
    tar, tsv = in_child(synthetic_tarball, args.tar_files, work)
    out: dict = {"files": args.tar_files, "tar_mib": round(tar.stat().st_size / 2**20, 1)}
    for threads in (1, 2):
        ds = work / f"afdb_ds{threads}"
        res = run_measured([sys.executable, "-m", "sepit", "data", "build", "--input", str(tsv), "--structures",
                            str(tar), "--out", str(ds), "--overwrite", "--split", "random", "--threads",
                            str(threads), "--no-progress", "--go-ontology", "none"])
        summary = json.loads((ds / "summary.json").read_text())
        step = summary["timings_s"]["structures_and_instructions"]
        out[f"threads_{threads}"] = {
            "seconds_total": res["seconds"], "seconds_structures": step, "scan_s": summary["timings_s"]
            ["scan_structures"], "files_per_s": round(args.tar_files / step, 1),
            "with_structure": summary["structure_coverage"]["with_structure"], "peak_rss_mib": res["peak_rss_mib"]}
    out["speedup_2_threads"] = round(out["threads_1"]["seconds_structures"] / out["threads_2"]["seconds_structures"],
                                     2)
    return out


NN_SCRIPT = """
import json, random, resource, sys, time
from sepit.data.store import DatasetStore
from sepit.eval.baselines import _training_search
store = DatasetStore(sys.argv[1])
accs = store.accessions()
seqs = {a: store.protein(a).sequence for a in accs}
queries = random.Random(0).sample(accs, min(int(sys.argv[2]), len(accs)))
train = {a: s for a, s in seqs.items()}
start = time.perf_counter()
with _training_search(None, train, "mmseqs", int(sys.argv[3])) as search:
    ranks = search.search({q: seqs[q] for q in queries}, 50, exclude_self=True, max_evalue=None)
took = time.perf_counter() - start
print(json.dumps({"search_s": round(took, 1), "queries": len(queries), "targets": len(train),
                  "with_hits": sum(bool(v) for v in ranks.values()),
                  "max_kept": max(len(v) for v in ranks.values()),
                  "python_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def bench_nn(args, size: int, work: Path) -> dict:
    res = run_measured([sys.executable, "-c", NN_SCRIPT, str(work / f"ds{size}"), str(args.nn_queries),
                        str(args.threads)])
    stats = json.loads(res["output"].strip().splitlines()[-1])
    return {**stats, "seconds": res["seconds"], "peak_rss_mib": res["peak_rss_mib"],
            "peak_tree_rss_mib": res["peak_tree_rss_mib"]}


LOAD_SCRIPT = """
import json, random, resource, sys, time
from sepit.data.store import DatasetStore
from sepit.train.data import crop
t0 = time.perf_counter()
store = DatasetStore(sys.argv[1])
items = store.instructions("train")
open_s = time.perf_counter() - t0
rng = random.Random(0)
n = int(sys.argv[2])
idx = [rng.randrange(len(items)) for _ in range(2 * n)]
rates = []
for part in (idx[:n], idx[n:]):
    start = time.perf_counter()
    for i in part:
        row = items[i]
        crop(store.protein(row["accession"]), 1024)
    rates.append(round(n / (time.perf_counter() - start), 1))
print(json.dumps({"items": n, "items_per_s": rates[0], "second_pass_items_per_s": rates[1],
                  "open_s": round(open_s, 2), "train_items": len(items),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def bench_loading(args, size: int, work: Path) -> dict:
    return _run_cold(LOAD_SCRIPT, work / f"ds{size}", args.load_items)


def _run_cold(script: str, store: Path, *argv) -> dict:
    """``script`` on ``store`` (its files dropped from the page cache first) in a subprocess: its JSON last line."""
    evicted = drop_page_cache(store)
    res = run_measured([sys.executable, "-c", script, str(store), *map(str, argv)])
    return {**json.loads(res["output"].strip().splitlines()[-1]), "evicted_mib": evicted}


PIPE_SCRIPT = """
import json, resource, sys, time
import torch
from transformers import AutoTokenizer
from sepit.data.store import DatasetStore
from sepit.model.processor import SepitProcessor
from sepit.resources import SMOLLM2, resolve_model
from sepit.train.collate import InstructionCollator
from sepit.train.config import DataSpec
from sepit.train.data import instruction_items
folder, n_items, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
t0 = time.perf_counter()
store = DatasetStore(folder)
rows = instruction_items(store, DataSpec(split="train", max_items=n_items, max_residues=1024), seed=0, stride=8)
sampled_s = time.perf_counter() - t0
processor = SepitProcessor(AutoTokenizer.from_pretrained(resolve_model(SMOLLM2)), pool_stride=8,
                           max_residues=1024, on_too_long="truncate")
collator = InstructionCollator(store, processor, 1024, structure_dropout=0.15, max_answer_tokens=256)
rows = collator.pretokenize(rows)
prepared_s = time.perf_counter() - t0
loader = torch.utils.data.DataLoader(rows, batch_size=8, shuffle=True, collate_fn=collator, num_workers=workers)
start = time.perf_counter()
seen = sum(int(batch["input_ids"].shape[0]) for batch in loader)
took = time.perf_counter() - start
print(json.dumps({"items": seen, "items_per_s": round(seen / took, 1), "sample_s": round(sampled_s, 1),
                  "prepare_s": round(prepared_s, 1), "workers": workers,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def bench_pipeline(args, size: int, work: Path) -> dict:
    return _run_cold(PIPE_SCRIPT, work / f"ds{size}", args.pipe_items, args.pipe_workers)


def pipeline_repeats(args, sizes: tuple[int, int]) -> dict:
    """``--pipe-repeats`` runs of each size, alternating (small, large, small, ...), so that drifts of the machine
    fall on both; per size the run with the median items/s, and every run's items/s."""
    runs: dict[str, list[dict]] = {str(s): [] for s in sizes}
    for _ in range(args.pipe_repeats):
        for size in sizes:
            runs[str(size)].append(bench_pipeline(args, size, args.work))
    out = {}
    for size, results in runs.items():
        ordered = sorted(results, key=lambda r: r["items_per_s"])
        out[size] = {**ordered[len(ordered) // 2], "runs_items_per_s": [r["items_per_s"] for r in results]}
    return out


def drop_page_cache(folder: Path) -> float:
    """Ask the kernel to drop ``folder``'s files from the page cache (clean pages only; no privileges needed),
    so that a measurement starts cold. Returns the MiB of files covered."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            total += path.stat().st_size
    return round(total / 2**20, 1)


def growth(build: dict) -> dict:
    sizes = sorted(int(k) for k in build)
    if len(sizes) < 2:
        return {}
    n = np.array(sizes, float)
    t = np.array([build[str(s)]["seconds"] for s in sizes])
    r = np.array([build[str(s)]["peak_rss_mib"] for s in sizes])
    out = {"time_exponent": round(float(np.polyfit(np.log(n), np.log(t), 1)[0]), 2),
           "rss_exponent": round(float(np.polyfit(np.log(n), np.log(r), 1)[0]), 2)}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].loglog(n, t / 60, "o-")
    axes[0].set(xlabel="proteins", ylabel="build wall-clock (min)",
                title=f"time ~ n^{out['time_exponent']}")
    axes[1].loglog(n, r / 1024, "o-")
    axes[1].set(xlabel="proteins", ylabel="peak RSS (GiB)", title=f"peak RSS ~ n^{out['rss_exponent']}")
    fig.tight_layout()
    fig.savefig(RESULTS / "scale_growth.png", dpi=110)
    return out


def _ratio_text(by_size: dict) -> str:
    """'; largest/smallest = r' for the items/s of a loading result (and of its second pass when present)."""
    sizes = sorted(by_size, key=int)
    if len(sizes) < 2:
        return ""
    small, large = by_size[sizes[0]], by_size[sizes[-1]]
    text = f"; ratio {large['items_per_s'] / small['items_per_s']:.2f}"
    if "second_pass_items_per_s" in small and "second_pass_items_per_s" in large:
        text += f" (second pass {large['second_pass_items_per_s'] / small['second_pass_items_per_s']:.2f})"
    return text


def _gib(mib: float | None) -> str:
    return "-" if mib is None else f"{mib / 1024:.2f} GiB"


def _build_table(builds: dict) -> list[str]:
    lines = ["| proteins | instructions | wall-clock | peak RSS | sepit RSS | tree RSS | read | split |"
             " structures+instr. | write | search check | exact check (sample) | largest cluster |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in sorted(builds, key=int):
        b = builds[size]
        tm, rep = b.get("timings_s") or {}, b.get("split_report") or {}
        check = rep.get("exact_check") or {}
        capped = f" (capped from {check['capped_from']:,})" if check.get("capped_from") else ""
        check_txt = (f"{check['above_threshold']}/{check['sampled']}{capped} above, {check['seconds']} s"
                     if check else "full exact" if "exact_repairs" in rep else "-")
        search = rep.get("search_repairs") or {}
        search_txt = _search_text(search)
        lines.append(f"| {b['proteins']:,} | {b['instructions']:,} | {b['seconds'] / 60:.1f} min |"
                     f" {b['peak_rss_mib'] / 1024:.2f} GiB | {_gib(b.get('sepit_peak_rss_mib'))} |"
                     f" {b['peak_tree_rss_mib'] / 1024:.2f} GiB |"
                     f" {tm.get('read', 0):.0f} s | {tm.get('split', 0):.0f} s |"
                     f" {tm.get('structures_and_instructions', 0):.0f} s | {tm.get('write', 0):.0f} s | {search_txt} |"
                     f" {check_txt} |"
                     f" {rep.get('largest_cluster', '-')} ({100 * rep.get('largest_cluster_share', 0):.2f}%) |")
    return lines


def markdown(res: dict) -> str:
    load = " (times under shared load: several jobs on the 2 cores)" if res.get("shared_load") else ""
    lines = ["## Swiss-Prot scale (bench_scale.py)", "",
             f"Swiss-Prot 2014-01 TSV subsamples, homology split at 30% (MMseqs2), {res.get('threads')} threads"
             f"{load}. Peak RSS = largest single process (sepit or an MMseqs2 child); sepit = the build's own"
             " process; tree = sampled sum.", "",
             *_build_table(res.get("build", {}))]
    if res.get("build_before_exclusion"):
        lines += ["", "Before the search check left out each held-out side's own proteins (every held-out protein"
                  " against all proteins, -s 7.5, 1000 candidates):", "",
                  *_build_table(res["build_before_exclusion"])]
    for _, b in sorted(res.get("build_random", {}).items(), key=lambda kv: int(kv[0])):
        tm = b.get("timings_s") or {}
        lines += ["", f"Random split (no homology split), {b['proteins']:,} proteins: {b['seconds'] / 60:.1f} min,"
                  f" peak RSS {b['peak_rss_mib'] / 1024:.2f} GiB (sepit {_gib(b.get('sepit_peak_rss_mib'))});"
                  f" read {tm.get('read', 0):.0f} s, split {tm.get('split', 0):.0f} s, structures + instructions"
                  f" {tm.get('structures_and_instructions', 0):.0f} s, write {tm.get('write', 0):.0f} s;"
                  f" {b['instructions']:,} instructions."]
    if res.get("growth"):
        g = res["growth"]
        lines += ["", f"Fitted growth over these sizes: time ~ n^{g['time_exponent']}, peak RSS ~ n^{g['rss_exponent']}"
                  " (plot: results/scale_growth.png)."]
    if res.get("structures"):
        s = res["structures"]
        lines += ["", f"Structures: synthetic AFDB-style tarball, {s['files']:,} .pdb.gz members ({s['tar_mib']} MiB),"
                  " read in place: "
                  + "; ".join(f"{k[-1]} process(es) {v['files_per_s']} files/s ({v['seconds_structures']} s, scan"
                              f" {v['scan_s']} s, {v['with_structure']:,} matched, peak RSS {v['peak_rss_mib']} MiB)"
                              for k, v in s.items() if k.startswith("threads_"))
                  + f"; speed-up with 2: {s['speedup_2_threads']}x."]
    if res.get("nn"):
        x = res["nn"]
        lines += ["", f"Nearest-neighbour top-50 (MMseqs2, streamed): {x['queries']:,} queries vs {x['targets']:,}"
                  f" proteins: search {x['search_s']} s, peak RSS {x['peak_rss_mib']} MiB (python"
                  f" {x['python_peak_rss_mib']} MiB), {x['with_hits']} queries with hits,"
                  f" at most {x['max_kept']} kept."]
    if res.get("loading"):
        lo = res["loading"]
        parts = [f"{k} proteins: {v['items_per_s']:,} items/s"
                 + (f", second pass {v['second_pass_items_per_s']:,}" if "second_pass_items_per_s" in v else "")
                 + f" (open {v['open_s']} s, peak RSS {v['peak_rss_mib']} MiB)"
                 for k, v in sorted(lo.items(), key=lambda kv: int(kv[0]))]
        lines += ["", "Training data loading (random items: row + memory-mapped protein + crop; page cache dropped"
                  " first): " + "; ".join(parts) + _ratio_text(lo)]
    if res.get("pipeline"):
        pi = res["pipeline"]
        parts = [f"{k} proteins: {v['items_per_s']:,} items/s (median of {v.get('runs_items_per_s', [0])};"
                 f" {v['items']:,} items, {v['workers']} workers;"
                 f" sample {v['sample_s']} s, sample + tokenise {v['prepare_s']} s)"
                 for k, v in sorted(pi.items(), key=lambda kv: int(kv[0]))]
        lines += ["", "Training input pipeline (sampled train items tokenised once, shuffled DataLoader + collator,"
                  " batch 8; page cache dropped first): " + "; ".join(parts) + _ratio_text(pi)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/tmp/sp2014.tsv.gz"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    ap.add_argument("--parts", nargs="+", default=["build", "structures", "nn", "loading"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split-check-sample", type=int, default=1000)
    ap.add_argument("--split-check-sensitivity", type=float, default=None, help="default: the build's")
    ap.add_argument("--split-check-max-seqs", type=int, default=100)
    ap.add_argument("--split", choices=("homology", "random"), default="homology",
                    help="random: builds without the homology split (results under build_random; their stores"
                         " serve the nn and loading parts)")
    ap.add_argument("--tar-files", type=int, default=20000)
    ap.add_argument("--nn-queries", type=int, default=1000)
    ap.add_argument("--load-items", type=int, default=20000)
    ap.add_argument("--pipe-items", type=int, default=4000)
    ap.add_argument("--pipe-workers", type=int, default=2)
    ap.add_argument("--pipe-repeats", type=int, default=3, help="runs per size (median reported)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sepit-scale")
    ap.add_argument("--shared-load", action="store_true", help="mark times as measured under shared load")
    ap.add_argument("--skip-existing", action="store_true",
                    help="do not rebuild a size whose result and dataset folder are already there")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "scale.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    res.update(threads=args.threads, shared_load=args.shared_load)

    def save(key: str, value, size: int | None = None) -> None:
        """Merge into the results file as it is now (another run of this script may be writing other parts)."""
        current = json.loads(path.read_text()) if path.is_file() else {}
        current.update(threads=args.threads, shared_load=args.shared_load)
        if size is None:
            current[key] = value
        else:
            current.setdefault(key, {})[str(size)] = value
        path.write_text(json.dumps(current, indent=1) + "\n")
        res.clear()
        res.update(current)

    for size in args.sizes if "build" in args.parts else []:
        if args.skip_existing and str(size) in res.get("build", {}) and (args.work / f"ds{size}").is_dir():
            continue
        result = bench_build(args, size, args.work)
        result.pop("output", None)
        print(f"build {size}: {result}", flush=True)
        save("build" if args.split == "homology" else "build_random", result, size)
    save("growth", growth(res.get("build", {})))
    if "structures" in args.parts:
        save("structures", bench_structures(args, args.work))
        print(f"structures: {res['structures']}", flush=True)
    if "nn" in args.parts:
        save("nn", bench_nn(args, max(args.sizes), args.work))
        print(f"nn: {res['nn']}", flush=True)
    if "loading" in args.parts:
        save("loading", {str(s): bench_loading(args, s, args.work) for s in (min(args.sizes), max(args.sizes))})
        print(f"loading: {res['loading']}", flush=True)
    if "pipeline" in args.parts:
        save("pipeline", pipeline_repeats(args, (min(args.sizes), max(args.sizes))))
        print(f"pipeline: {res['pipeline']}", flush=True)
    text = markdown(res)
    (RESULTS / "scale.md").write_text(text + "\n")
    sys.path.insert(0, str(Path(__file__).parent))
    import collect

    collect.main()  # RESULTS.md is made from results/*.md
    print(text)


if __name__ == "__main__":
    main()
