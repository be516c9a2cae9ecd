"""``sepit data build``: flat files, UniProt XML and TSV exports + structures -> instruction dataset folder (atomic).

Per-record problems (bad entry, invalid residues, duplicate accession, structure that cannot be read or does
not align) are counted in the summary with their reasons; nothing is dropped silently.

The build streams (memory bounded apart from what the split needs: every accession's sequence and cluster):

1. a first pass over the inputs keeps only sequences and the label pools (sources of negatives/distractors);
2. the split is computed from the sequences (:mod:`sepit.data.splits`);
3. a second pass reads the records again in batches of ``batch_size``: structures are parsed (in ``threads``
   processes), each batch's protein rows are written to an Arrow file and its instructions appended to another.

Finished work is kept in ``.<out>.partial/`` beside the output until the build succeeds: an interrupted build
rerun with the same inputs reuses the split and the parsed protein batches (and says so); with different
inputs it says that it starts over. The output folder itself appears only complete (``atomic_dir``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import resource
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import datasets
import tqdm

from sepit.config import save_config
from sepit.data.annotations import closed_labels, feature_spans
from sepit.data.go import GeneOntology
from sepit.data.instructions import InstructionConfig, make_instructions
from sepit.data.matching import StructureFinder, parse_structure
from sepit.data.records import ProteinRecord
from sepit.data.splits import homology_split_report, random_split
from sepit.data.store import ArrowPartWriter, read_part, write_store_parts
from sepit.data.summary import BuildStats
from sepit.data.tsv import parse_tsv
from sepit.data.uniprot import parse_flatfile
from sepit.data.uniprot_xml import is_uniprot_xml, parse_uniprot_xml
from sepit.errors import ConfigError, InputFormatError
from sepit.io_utils import atomic_dir, atomic_file, open_text


@dataclass
class BuildConfig:
    """Everything a build depends on (saved as ``build.yaml`` in the output)."""

    inputs: list[str] = field(default_factory=list)
    out: str = ""
    structures: str | None = None  # folder (searched recursively) or uncompressed .tar of structure files
    structure_index: str | None = None
    split: str = "homology"  # homology | random
    identity: float = 0.3
    coverage: float = 0.0  # MMseqs2 clustering: alignment covers this share of both sequences
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    cluster_method: str = "auto"  # auto | mmseqs | opal
    verify_split: bool = True  # after MMseqs2 clustering: search held-out vs all proteins and repair
    split_check_sample: int = 1000  # exact check (pyopal) of this many held-out proteins, at scale
    split_check_sensitivity: float | None = None  # search check's MMseqs2 -s; None: 7.5 to 100k proteins, else 5.7
    split_check_max_seqs: int = 100  # candidates per held-out protein in that search (other sides only)
    seed: int = 0
    min_structure_identity: float = 0.9
    yes_no_pairs: int = 1
    num_choices: int = 4
    threads: int = 1  # MMseqs2/pyopal threads and structure-parsing processes
    batch_size: int = 2000  # proteins per streamed batch
    go_ontology: str | None = None  # OBO file or GO.db's GO.sqlite: GO negatives avoid implied terms
    overwrite: bool = False
    progress: bool = True


class SkipLog:
    """Records skipped (or degraded) items: ``add(kind, source, record, reason)``; counts per reason."""

    def __init__(self, keep: int = 200):
        self.counts: Counter[str] = Counter()
        self.examples: list[dict] = []
        self.keep = keep

    def add(self, kind: str, source: str, record: str, reason: str) -> None:
        self.counts[f"{kind}: {_reason_key(reason)}"] += 1
        if len(self.examples) < self.keep:
            self.examples.append({"kind": kind, "source": source, "record": record, "reason": reason})


def _reason_key(reason: str) -> str:
    """Group reasons: drop file names and numbers so that counts are per kind of problem."""
    words = [w for w in reason.split() if "/" not in w and not any(ch.isdigit() for ch in w)]
    return " ".join(words)[:100]


def iter_records(paths: list[str], skips: SkipLog | None) -> Iterator[ProteinRecord]:
    """Every input's records (flat file or TSV, by content); first occurrence of an accession wins.
    ``skips`` None: problems are not recorded (a second pass over inputs already checked)."""
    seen: set[str] = set()
    for path in paths:
        reader = input_reader(Path(path))
        on_error = (lambda src, rid, why: skips.add("record", src, rid, why)) if skips else (lambda *a: None)
        for rec in reader(path, on_error=on_error):
            if rec.accession in seen:
                if skips:
                    skips.add("record", rec.source, rec.accession, "duplicate accession (kept the first)")
                continue
            seen.add(rec.accession)
            yield rec


def read_records(paths: list[str], skips: SkipLog) -> list[ProteinRecord]:
    """All records in memory (small inputs, tests); builds stream with :func:`iter_records`."""
    return list(iter_records(paths, skips))


def input_reader(path: Path):
    """The record reader for an input, by content: UniProt XML, UniProt TSV export or Swiss-Prot flat file."""
    if is_uniprot_xml(path):
        return parse_uniprot_xml
    return parse_tsv if _is_tsv(path) else parse_flatfile


def _is_tsv(path: Path) -> bool:
    with open_text(path) as fh:
        first = fh.readline()
    if first.startswith("ID   "):
        return False
    if "\t" in first and "Entry" in first.split("\t"):
        return True
    raise InputFormatError(f"{path}: neither a Swiss-Prot flat file (first line 'ID   ...'), a UniProt TSV"
                           f" export (header with 'Entry') nor UniProt XML; first line: {first[:80]!r}")


def scan_inputs(paths: list[str], skips: SkipLog, progress: bool) -> tuple[dict[str, str], dict[str, list[str]]]:
    """First pass: accession -> sequence, and category -> sorted labels (the instruction pools)."""
    sequences: dict[str, str] = {}
    pools: dict[str, set[str]] = {}
    for rec in tqdm.tqdm(iter_records(paths, skips), desc="reading", unit="protein", disable=not progress):
        sequences[rec.accession] = rec.sequence
        for category, labels in closed_labels(rec).items():
            pools.setdefault(category, set()).update(labels)
    from sepit.data.questions import EC_CLASSES

    pools["ec_class"] = set(EC_CLASSES.values())
    return sequences, {k: sorted(v) for k, v in pools.items()}


def protein_rows(batch: list[ProteinRecord], finder: StructureFinder | None, cfg: BuildConfig, skips: SkipLog,
                 pool: ProcessPoolExecutor | None) -> list[dict]:
    """Protein rows of a batch; structures parsed in ``pool`` when given (results in batch order)."""
    tasks = [(r.accession, r.sequence, finder.candidates(r) if finder else []) for r in batch]
    work = partial(parse_structure, min_identity=cfg.min_structure_identity)
    todo = [t for t in tasks if t[2]]
    parsed = iter(pool.map(work, todo, chunksize=16) if pool and todo else map(work, todo))
    rows = []
    for rec, task in zip(batch, tasks, strict=True):
        coords, plddt, source, failures = next(parsed) if task[2] else (None, None, "", [])
        for path, reason in failures:
            skips.add("structure", path, rec.accession, reason)
        rows.append({"accession": rec.accession, "sequence": rec.sequence, "coords": coords, "plddt": plddt,
                     "structure_source": source, "entry_name": rec.entry_name, "protein_name": rec.protein_name,
                     "gene": rec.gene, "organism": rec.organism, "taxon_id": rec.taxon_id,
                     "labels": closed_labels(rec), "feature_spans": feature_spans(rec)})
    return rows


def attach_structure(rec: ProteinRecord, finder: StructureFinder | None, cfg: BuildConfig,
                     skips: SkipLog) -> dict:
    """The protein row of ``rec``: the first candidate structure that reads and aligns, else none."""
    return protein_rows([rec], finder, cfg, skips, None)[0]


def assign_splits(sequences: dict[str, str], cfg: BuildConfig) -> tuple[dict[str, str], dict]:
    """Split of every accession and a report (clusters, largest cluster's share, checks)."""
    fractions = tuple(cfg.fractions)
    if cfg.split == "random":
        return random_split(list(sequences), fractions, cfg.seed), {"method": "random"}
    if cfg.split == "homology":
        return homology_split_report(sequences, cfg.identity, fractions, cfg.seed, cfg.cluster_method,
                                     cfg.threads, verify=cfg.verify_split, coverage=cfg.coverage,
                                     check_sample=cfg.split_check_sample,
                                     check_sensitivity=cfg.split_check_sensitivity,
                                     check_max_seqs=cfg.split_check_max_seqs)
    raise ConfigError(f"unknown split {cfg.split!r} (homology or random)")


def build_dataset(cfg: BuildConfig) -> dict:
    """Run a build; returns the summary (also written to ``<out>/summary.json``)."""
    if not cfg.inputs or not cfg.out:
        raise ConfigError("a build needs at least one input file and an output folder")
    if cfg.batch_size < 1 or cfg.threads < 1:
        raise ConfigError(f"batch size and threads must be >= 1, got {cfg.batch_size} and {cfg.threads}")
    sensitivity = cfg.split_check_sensitivity
    if (sensitivity is not None and not 1.0 <= sensitivity <= 7.5) or cfg.split_check_max_seqs < 1:
        raise ConfigError(f"split check: sensitivity must be in [1, 7.5] and max seqs >= 1, got"
                          f" {cfg.split_check_sensitivity} and {cfg.split_check_max_seqs}")
    if Path(cfg.out).exists() and not cfg.overwrite:  # checked now, not after the whole build
        raise ConfigError(f"output folder {cfg.out} already exists (pass --overwrite to replace it)")
    ontology = GeneOntology.load(cfg.go_ontology) if cfg.go_ontology else None  # a bad file fails first
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    skips = SkipLog()
    sequences, pools = scan_inputs(cfg.inputs, skips, cfg.progress)
    if not sequences:
        raise InputFormatError(f"no usable protein record in {cfg.inputs}")
    timings["read"], clock = time.perf_counter() - clock, time.perf_counter()
    partial_work = PartialBuild(cfg)
    splits, split_report = partial_work.split(partial(assign_splits, sequences, cfg))
    del sequences  # the split is all the rest of the build needs of them
    timings["split"], clock = time.perf_counter() - clock, time.perf_counter()
    finder = StructureFinder(cfg.structures, cfg.structure_index) if cfg.structures or cfg.structure_index \
        else None
    for name, reason in finder.problems if finder else []:
        skips.add("structure", name, "", reason)
    timings["scan_structures"], clock = time.perf_counter() - clock, time.perf_counter()
    stats = BuildStats()
    icfg = InstructionConfig(seed=cfg.seed, yes_no_pairs=cfg.yes_no_pairs, num_choices=cfg.num_choices)
    with atomic_dir(cfg.out, overwrite=cfg.overwrite) as tmp, _quiet_datasets(), _pool(cfg, finder) as pool, \
            ArrowPartWriter(tmp / "_instructions.arrow") as items_out:
        bar = tqdm.tqdm(total=len(splits), desc="building", unit="protein", disable=not cfg.progress)
        for i, batch in enumerate(_batches(iter_records(cfg.inputs, None), cfg.batch_size)):
            part = partial_work.proteins(i, lambda b=batch: protein_rows(b, finder, cfg, skips, pool))
            stats.add_part(read_part(part))
            items = make_instructions(batch, icfg, pools=pools, ontology=ontology)
            for item in items:
                item["split"] = splits[item["accession"]]
            for acc in sorted({r.accession for r in batch} - {i["accession"] for i in items}):
                skips.add("record", "", acc, "no annotation to make instructions from (protein kept)")
            stats.add_items(items)
            items_out.write_items(items)
            bar.update(len(batch))
        bar.close()
        timings["structures_and_instructions"], clock = time.perf_counter() - clock, time.perf_counter()
        summary = stats.summary(splits, skips, cfg)
        summary.update(split_report=split_report, resumed=partial_work.resumed,
                       structure_files_indexed=finder.files if finder else 0)
        items_out.close()
        write_store_parts(tmp, partial_work.parts(), tmp / "_instructions.arrow", summary)
        timings["write"] = time.perf_counter() - clock
        summary["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
        summary["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # sepit only
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        save_config(cfg, tmp / "build.yaml")
    partial_work.finish()
    return summary


class PartialBuild:
    """Finished work of a build kept in ``.<out>.partial/`` until it succeeds (module docstring)."""

    def __init__(self, cfg: BuildConfig):
        out = Path(cfg.out)
        self.root = out.parent / f".{out.name}.partial"
        inputs = [_file_key(p) for p in cfg.inputs]
        self.keys = {
            "split": _digest([inputs, cfg.split, cfg.identity, cfg.coverage, cfg.fractions, cfg.cluster_method,
                              cfg.verify_split, cfg.split_check_sample, cfg.seed, cfg.split_check_sensitivity,
                              cfg.split_check_max_seqs]),
            "proteins": _digest([inputs, _file_key(cfg.structures), _file_key(cfg.structure_index),
                                 cfg.min_structure_identity, cfg.batch_size, 1]),
        }
        self.resumed = {"split": False, "protein_batches": 0}
        self._parts: list[Path] = []
        state = self.root / "state.json"
        old = json.loads(state.read_text()) if state.is_file() else None
        if old is not None:
            stale = [k for k in self.keys if old.get(k) != self.keys[k]]
            for kind in stale:
                for path in self.root.glob("split.json" if kind == "split" else "proteins-*.arrow"):
                    path.unlink()
            print(f"sepit data build: found an interrupted build in {self.root}; " + (
                f"inputs or settings changed ({', '.join(stale)}): starting that work over" if stale
                else "reusing its finished work"), file=sys.stderr)
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_file(state) as fh:
            fh.write(json.dumps(self.keys))

    def split(self, compute) -> tuple[dict[str, str], dict]:
        path = self.root / "split.json"
        if path.is_file():
            self.resumed["split"] = True
            saved = json.loads(path.read_text())
            return saved["split"], saved["report"]
        split, report = compute()
        with atomic_file(path) as fh:
            json.dump({"split": split, "report": report}, fh)
        return split, report

    def proteins(self, index: int, compute) -> Path:
        """Arrow file of protein batch ``index``: reused when an earlier run finished it, else computed."""
        path = self.root / f"proteins-{index:05d}.arrow"
        if path.is_file():
            self.resumed["protein_batches"] += 1
        else:
            with ArrowPartWriter(path) as writer:
                writer.write_proteins(compute())
        self._parts.append(path)
        return path

    def parts(self) -> list[Path]:
        return list(self._parts)

    def finish(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _file_key(path: str | None) -> list | None:
    if not path:
        return None
    p = Path(path).resolve()
    st = p.stat() if p.exists() else None
    return [str(p), st.st_size if st else None, st.st_mtime_ns if st else None]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def _pool(cfg: BuildConfig, finder: StructureFinder | None):
    """Structure-parsing processes (``cfg.threads``), or None for one thread / no structures."""
    if finder is None or cfg.threads <= 1:
        yield None
        return
    with ProcessPoolExecutor(cfg.threads, mp_context=multiprocessing.get_context("forkserver")) as pool:
        yield pool


@contextlib.contextmanager
def _quiet_datasets():
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_progress_bars()
