"""Fixtures for the user-facing commands (embed, ask over a FASTA): a tiny random SEPIT model folder, a
stage-0-like folder holding its encoder, and CA-only PDB files of known sequences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_sepit import PDB_SEQUENCE, pdb_text, tiny_sepit  # noqa: E402, F401


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
