"""``sepit data build``: flat files and TSV exports + structures -> instruction dataset folder (atomic).

Per-record problems (bad entry, invalid residues, duplicate accession, structure that cannot be read or does
not align) are counted in the summary with their reasons; nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import tqdm

from sepit.config import save_config
from sepit.data.annotations import closed_labels
from sepit.data.go import GeneOntology
from sepit.data.instructions import InstructionConfig, make_instructions
from sepit.data.matching import StructureFinder
from sepit.data.records import ProteinRecord
from sepit.data.splits import homology_split, random_split
from sepit.data.store import write_store
from sepit.data.structure import structure_for_sequence
from sepit.data.summary import make_summary
from sepit.data.tsv import parse_tsv
from sepit.data.uniprot import parse_flatfile
from sepit.errors import ConfigError, InputFormatError, StructureError
from sepit.io_utils import atomic_dir, open_text


@dataclass
class BuildConfig:
    """Everything a build depends on (saved as ``build.yaml`` in the output)."""

    inputs: list[str] = field(default_factory=list)
    out: str = ""
    structures: str | None = None
    structure_index: str | None = None
    split: str = "homology"  # homology | random
    identity: float = 0.3
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    cluster_method: str = "auto"  # auto | mmseqs | opal
    verify_split: bool = True  # after MMseqs2: align held-out proteins to training ones exactly and repair
    seed: int = 0
    min_structure_identity: float = 0.9
    yes_no_pairs: int = 1
    num_choices: int = 4
    threads: int = 1
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


def read_records(paths: list[str], skips: SkipLog) -> list[ProteinRecord]:
    """Read every input (flat file or TSV, by content); first occurrence of an accession wins."""
    records: dict[str, ProteinRecord] = {}
    for path in paths:
        reader = parse_tsv if _is_tsv(Path(path)) else parse_flatfile
        for rec in reader(path, on_error=lambda src, rid, why: skips.add("record", src, rid, why)):
            if rec.accession in records:
                skips.add("record", rec.source, rec.accession, "duplicate accession (kept the first)")
                continue
            records[rec.accession] = rec
    return list(records.values())


def _is_tsv(path: Path) -> bool:
    with open_text(path) as fh:
        first = fh.readline()
    if first.startswith("ID   "):
        return False
    if "\t" in first and "Entry" in first.split("\t"):
        return True
    raise InputFormatError(f"{path}: neither a Swiss-Prot flat file (first line 'ID   ...') nor a UniProt TSV"
                           f" export (header with 'Entry'); first line: {first[:80]!r}")


def attach_structure(rec: ProteinRecord, finder: StructureFinder | None, cfg: BuildConfig,
                     skips: SkipLog) -> dict:
    """The protein row of ``rec``: the first candidate structure that reads and aligns, else none."""
    row = {"accession": rec.accession, "sequence": rec.sequence, "coords": None, "plddt": None,
           "structure_source": "", "entry_name": rec.entry_name, "protein_name": rec.protein_name,
           "gene": rec.gene, "organism": rec.organism, "taxon_id": rec.taxon_id, "labels": closed_labels(rec)}
    for cand in finder.candidates(rec) if finder else []:
        try:
            res = structure_for_sequence(cand.path, rec.sequence, chain=cand.chain,
                                         min_identity=cfg.min_structure_identity)
        except StructureError as err:
            skips.add("structure", str(cand.path), rec.accession, str(err).split(": ", 1)[-1])
            continue
        row.update(coords=res.coords_L3, plddt=res.plddt_L, structure_source=cand.source(res.chain))
        break
    return row


def assign_splits(records: list[ProteinRecord], cfg: BuildConfig) -> dict[str, str]:
    accs = [r.accession for r in records]
    fractions = tuple(cfg.fractions)
    if cfg.split == "random":
        return random_split(accs, fractions, cfg.seed)
    if cfg.split == "homology":
        seqs = {r.accession: r.sequence for r in records}
        return homology_split(seqs, cfg.identity, fractions, cfg.seed, cfg.cluster_method, cfg.threads,
                              verify=cfg.verify_split)
    raise ConfigError(f"unknown split {cfg.split!r} (homology or random)")


def build_dataset(cfg: BuildConfig) -> dict:
    """Run a build; returns the summary (also written to ``<out>/summary.json``)."""
    if not cfg.inputs or not cfg.out:
        raise ConfigError("a build needs at least one input file and an output folder")
    if Path(cfg.out).exists() and not cfg.overwrite:  # checked now, not after the whole build
        raise ConfigError(f"output folder {cfg.out} already exists (pass --overwrite to replace it)")
    ontology = GeneOntology.load(cfg.go_ontology) if cfg.go_ontology else None  # a bad file fails first
    skips = SkipLog()
    records = read_records(cfg.inputs, skips)
    if not records:
        raise InputFormatError(f"no usable protein record in {cfg.inputs}")
    finder = StructureFinder(cfg.structures, cfg.structure_index) if cfg.structures or cfg.structure_index \
        else None
    bar = tqdm.tqdm(records, desc="structures", unit="protein", disable=not cfg.progress)
    proteins = [attach_structure(rec, finder, cfg, skips) for rec in bar]
    splits = assign_splits(records, cfg)
    icfg = InstructionConfig(seed=cfg.seed, yes_no_pairs=cfg.yes_no_pairs, num_choices=cfg.num_choices)
    items = make_instructions(records, icfg, ontology=ontology)
    for item in items:
        item["split"] = splits[item["accession"]]
    no_items = sorted({r.accession for r in records} - {i["accession"] for i in items})
    for acc in no_items:
        skips.add("record", "", acc, "no annotation to make instructions from (protein kept)")
    summary = make_summary(proteins, items, splits, skips, cfg)
    with atomic_dir(cfg.out, overwrite=cfg.overwrite) as tmp, _quiet_datasets():
        write_store(tmp, proteins, items, summary)
        save_config(cfg, tmp / "build.yaml")
    return summary


@contextlib.contextmanager
def _quiet_datasets():
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_progress_bars()
