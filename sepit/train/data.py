"""Training items from a built dataset (``sepit data build``), with a ``length`` column for length-grouped
batching, and the collator that turns rows into model inputs (dynamic padding: never a fixed 1024)."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from sepit.data.store import DatasetStore
from sepit.errors import ConfigError
from sepit.train.config import DataSpec


def instruction_items(store: DatasetStore, spec: DataSpec, seed: int, stride: int = 1) -> datasets.Dataset:
    """Instruction rows of ``spec.split`` and ``spec.tasks``, at most ``spec.max_items`` (seeded sample),
    with ``length`` ~ LLM positions (protein positions + question/answer tokens estimated as chars / 4)."""
    ds = store.instructions(spec.split)
    if spec.tasks:
        wanted = set(spec.tasks)
        ds = ds.filter(lambda t: t in wanted, input_columns="task")
    if len(ds) == 0:
        raise ConfigError(f"no {spec.tasks or 'any'} items in split {spec.split!r} of {store.root}")
    if spec.max_items is not None and len(ds) > spec.max_items:
        ds = ds.shuffle(seed=seed).select(range(spec.max_items))
    lengths = [
        min(len(store.protein(acc).sequence), spec.max_residues) // stride + (len(q) + len(a)) // 4
        for acc, q, a in zip(ds["accession"], ds["question"], ds["answer"], strict=True)
    ]
    return ds.add_column("length", lengths)


def protein_items(store: DatasetStore, spec: DataSpec, seed: int) -> datasets.Dataset:
    """Stage 0: one row per protein of the split with a caption text (its description), ``length`` = residues."""
    ds = store.instructions(spec.split).filter(lambda t: t == "caption", input_columns="task")
    seen: dict[str, str] = {}
    for acc, answer in zip(ds["accession"], ds["answer"], strict=True):
        seen.setdefault(acc, answer)
    if not seen:
        raise ConfigError(f"no caption items in split {spec.split!r} of {store.root} for stage 0")
    rows = datasets.Dataset.from_dict({"accession": list(seen), "text": list(seen.values())})
    if spec.max_items is not None and len(rows) > spec.max_items:
        rows = rows.shuffle(seed=seed).select(range(spec.max_items))
    lengths = [min(len(store.protein(a).sequence), spec.max_residues) for a in rows["accession"]]
    return rows.add_column("length", lengths)


def crop(entry, max_residues: int) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """First ``max_residues`` residues with their coordinates/pLDDT."""
    seq = entry.sequence[:max_residues]
    coords = None if entry.coords is None else entry.coords[:max_residues]
    plddt = None if entry.plddt is None else entry.plddt[:max_residues]
    return seq, coords, plddt


def drop_structure(coords: list, p: float) -> list:
    """Structure dropout (DESIGN 2.5): each protein loses its structure with probability ``p``.

    Uses torch's global RNG, which the Trainer checkpoints, so a resumed run draws the same masks.
    """
    if p <= 0:
        return coords
    keep = (torch.rand(len(coords)) >= p).tolist()
    return [c if k else None for c, k in zip(coords, keep, strict=True)]
