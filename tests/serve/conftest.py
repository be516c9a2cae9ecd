"""Serve fixtures: a tiny random SEPIT model saved to a folder (safetensors), loaded once per session, and a
small CA-only PDB file of a known sequence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_sepit import PDB_SEQUENCE, pdb_text, tiny_sepit  # noqa: E402, F401

from sepit.model.build import save_sepit  # noqa: E402


def talkative_tiny_sepit(seed: int = 0):
    """``tiny_sepit`` whose blank and special tokens have zero embeddings (tied to the output layer), so that
    greedy decoding writes visible words instead of newlines and never stops early."""
    model, processor = tiny_sepit(seed)
    tok = processor.tokenizer
    blank = [i for i, t in enumerate(tok.convert_ids_to_tokens(list(range(len(tok)))))
             if t is None or not tok.convert_tokens_to_string([t]).strip()]
    with torch.no_grad():
        model.get_input_embeddings().weight[[*blank, *tok.all_special_ids]] = 0
    return model, processor


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_sepit_model")
    save_sepit(folder, *talkative_tiny_sepit(seed=0))
    return folder


@pytest.fixture(scope="session")
def sepit_model(model_dir):
    from sepit.api import Sepit

    return Sepit.from_pretrained(model_dir, device="cpu")
