"""Fixtures for the user-facing commands (embed, ask over a FASTA): a tiny random SEPIT model folder, a
stage-0-like folder holding its encoder, and CA-only PDB files of known sequences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_sepit import tiny_sepit  # noqa: E402

THREE = {"A": "ALA", "C": "CYS", "D": "ASP", "E": "GLU", "F": "PHE", "G": "GLY", "H": "HIS", "I": "ILE",
         "K": "LYS", "L": "LEU", "M": "MET", "N": "ASN", "P": "PRO", "Q": "GLN", "R": "ARG", "S": "SER",
         "T": "THR", "V": "VAL", "W": "TRP", "Y": "TYR"}


def pdb_text(sequence: str, chain: str = "A", seed: int = 0) -> str:
    """A CA-only PDB chain with a random-walk trace."""
    xyz = np.cumsum(np.random.default_rng(seed).normal(0, 2.0, size=(len(sequence), 3)), axis=0)
    lines = [f"ATOM  {i:5d}  CA  {THREE[aa]} {chain}{i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00 80.00           C"
             for i, (aa, (x, y, z)) in enumerate(zip(sequence, xyz, strict=True), 1)]
    return "\n".join([*lines, "TER", "END"]) + "\n"


@pytest.fixture(scope="session")
def tiny_parts():
    return tiny_sepit(seed=0)


@pytest.fixture(scope="session")
def sepit_dir(tiny_parts, tmp_path_factory) -> Path:
    from sepit.model.build import save_sepit

    folder = tmp_path_factory.mktemp("tiny_sepit")
    save_sepit(folder, *tiny_parts)
    return folder


@pytest.fixture(scope="session")
def stage0_dir(tiny_parts, tmp_path_factory) -> Path:
    """Stage-0 layout: the warm-up model's config at the root, the encoder in ``encoder/``."""
    folder = tmp_path_factory.mktemp("stage0")
    tiny_parts[0].encoder.save_pretrained(folder / "encoder")
    (folder / "config.json").write_text(json.dumps({"model_type": "sepit_warmup"}))
    return folder
