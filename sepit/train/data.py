"""Training items from a built dataset (``sepit data build``), with a ``length`` column for length-grouped
batching, and the collator that turns rows into model inputs (dynamic padding: never a fixed 1024)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from sepit.data.store import DatasetStore, own_table, rows_where, shuffled
from sepit.errors import ConfigError
from sepit.train.config import DataSpec


def instruction_items(store: DatasetStore, spec: DataSpec, seed: int, stride: int = 1) -> datasets.Dataset:
    """Instruction rows of ``spec.split`` and ``spec.tasks``, at most ``spec.max_items`` (seeded sample),
    with ``length`` ~ LLM positions (protein positions + question/answer tokens estimated as chars / 4)."""
    ds = store.instructions(spec.split)
    if spec.tasks:
        ds = rows_where(ds, "task", spec.tasks)
    if len(ds) == 0:
        raise ConfigError(f"no {spec.tasks or 'any'} items in split {spec.split!r} of {store.root}")
    if spec.max_items is not None and len(ds) > spec.max_items:
        ds = shuffled(ds, seed).select(range(spec.max_items))
    lengths = [
        min(len(store.protein(acc).sequence), spec.max_residues) // stride + (len(q) + len(a)) // 4
        for acc, q, a in zip(ds["accession"], ds["question"], ds["answer"], strict=True)
    ]
    return own_table(ds).add_column("length", lengths)


def protein_items(store: DatasetStore, spec: DataSpec, seed: int) -> datasets.Dataset:
    """Stage 0: one row per protein of the split with a caption text (its description), ``length`` = residues."""
    ds = rows_where(store.instructions(spec.split), "task", ["caption"])
    seen: dict[str, str] = {}
    for acc, answer in zip(ds["accession"], ds["answer"], strict=True):
        seen.setdefault(acc, answer)
    if not seen:
        raise ConfigError(f"no caption items in split {spec.split!r} of {store.root} for stage 0")
    rows = datasets.Dataset.from_dict({"accession": list(seen), "text": list(seen.values())})
    if spec.max_items is not None and len(rows) > spec.max_items:
        rows = shuffled(rows, seed).select(range(spec.max_items))
    lengths = [min(len(store.protein(a).sequence), spec.max_residues) for a in rows["accession"]]
    return rows.add_column("length", lengths)


CROP_WINDOWS = ("start", "random", "features")


@dataclass
class CropCounter:
    """What the collator cropped since training (re)started: proteins seen, proteins longer than
    ``max_residues`` (cropped), residues dropped from them."""

    proteins: int = 0
    cropped: int = 0
    residues_dropped: int = 0

    def add(self, length: int, max_residues: int) -> None:
        self.proteins += 1
        if length > max_residues:
            self.cropped += 1
            self.residues_dropped += length - max_residues

    def as_log(self) -> dict[str, int]:
        return {"crop_proteins_seen": self.proteins, "crop_cropped": self.cropped,
                "crop_residues_dropped": self.residues_dropped}


def crop_window_start(length: int, max_residues: int, window: str = "start",
                      spans: list[tuple[int, int]] | None = None) -> int:
    """First residue of the kept window: 0 (``start``), uniform over the valid starts (``random``), or centred on
    one of the protein's annotated feature ``spans`` drawn uniformly (``features``; a protein without any gets a
    random window). Draws use torch's global RNG, which the Trainer checkpoints, so a resumed run draws the same
    windows."""
    if window not in CROP_WINDOWS:
        raise ConfigError(f"crop window must be one of {list(CROP_WINDOWS)}, got {window!r}")
    if length <= max_residues or window == "start":
        return 0
    last = length - max_residues
    if window == "features" and spans:
        lo, hi = spans[int(torch.randint(0, len(spans), ()))]
        return min(max(0, (lo + hi) // 2 - max_residues // 2), last)
    return int(torch.randint(0, last + 1, ()))


def crop(entry, max_residues: int, window: str = "start", spans: list[tuple[int, int]] | None = None
         ) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """``max_residues`` consecutive residues (see :func:`crop_window_start`) with their coordinates/pLDDT."""
    start = crop_window_start(len(entry.sequence), max_residues, window, spans)
    keep = slice(start, start + max_residues)
    seq = entry.sequence[keep]
    coords = None if entry.coords is None else entry.coords[keep]
    plddt = None if entry.plddt is None else entry.plddt[keep]
    return seq, coords, plddt


def drop_structure(coords: list, p: float) -> list:
    """Structure dropout (DESIGN 2.5): each protein loses its structure with probability ``p``.

    Uses torch's global RNG, which the Trainer checkpoints, so a resumed run draws the same masks.
    """
    if p <= 0:
        return coords
    keep = (torch.rand(len(coords)) >= p).tolist()
    return [c if k else None for c, k in zip(coords, keep, strict=True)]


class ProteinCropper:
    """Rows (with ``accession``) -> sequences, coordinates and pLDDT of the batch: each protein cropped to
    ``max_residues`` residues, then its structure dropped with probability ``structure_dropout``. Shared by
    the stage-0 and stage-1/2 collators; ``counter`` counts the crops."""

    def __init__(self, store: DatasetStore, max_residues: int, structure_dropout: float = 0.0,
                 window: str = "start"):
        crop_window_start(0, max_residues, window)  # validates the window name
        self.store, self.max_residues = store, max_residues
        self.structure_dropout, self.window = structure_dropout, window
        self.counter = CropCounter()

    def __call__(self, rows: list[dict]) -> tuple[list[str], list, list]:
        entries = [self.store.protein(r["accession"]) for r in rows]
        for entry in entries:
            self.counter.add(len(entry.sequence), self.max_residues)
        proteins = [crop(entry, self.max_residues, self.window, self._spans(entry)) for entry in entries]
        coords = drop_structure([c for _, c, _ in proteins], self.structure_dropout)
        plddt = [p if c is not None else None for (_, _, p), c in zip(proteins, coords, strict=True)]
        return [s for s, _, _ in proteins], coords, plddt

    def _spans(self, entry) -> list[tuple[int, int]] | None:
        if self.window != "features" or len(entry.sequence) <= self.max_residues:
            return None
        return self.store.feature_spans(entry.accession)


def crop_summary(store: DatasetStore, rows: datasets.Dataset, max_residues: int, window: str) -> dict:
    """Per epoch: how many of the training rows' proteins are cropped and how many residues that drops."""
    counter = CropCounter()
    for accession in rows["accession"]:
        counter.add(len(store.protein(accession).sequence), max_residues)
    return {"window": window, "max_residues": max_residues, "rows": counter.proteins,
            "rows_cropped": counter.cropped, "residues_dropped": counter.residues_dropped}
