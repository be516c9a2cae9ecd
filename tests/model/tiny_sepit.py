"""Tiny SEPIT parts shared by the model tests: the real SmolLM2 tokenizer (chat template) with a random
2-layer, width-32 Llama of its vocabulary, and a tiny structure-aware encoder."""

from __future__ import annotations

import functools

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaConfig

from sepit.model.build import build_sepit
from sepit.model.encoder import SepitEncoderConfig
from sepit.model.esm_tokenizer import esm_config
from sepit.resources import resolve_model

SEQS = ["MKTAYIAKQR", "MKV", "GAVLIPF"]
QUESTIONS = ["What is the function of this protein?", "Does it bind heme?", "Where is it?"]
ANSWERS = ["It is a kinase.", "yes", "In the nucleus, mostly."]


@functools.lru_cache(maxsize=1)
def _smol_tokenizer_path() -> str:
    return resolve_model("smollm2-135m-instruct")


def smol_tokenizer():
    """A fresh copy each call (the processor adds tokens to it)."""
    return AutoTokenizer.from_pretrained(_smol_tokenizer_path())


def tiny_llm_config(vocab_size: int = 49155, tie: bool = True, **overrides) -> LlamaConfig:
    kwargs = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def tiny_encoder_config() -> SepitEncoderConfig:
    return SepitEncoderConfig(esm_config=esm_config("tiny"), num_kernels=8)


def tiny_sepit(seed: int = 0, tokenizer=None, **kwargs):
    """(model, processor) in eval mode, fp32, deterministic."""
    torch.manual_seed(seed)
    model, processor = build_sepit(tiny_encoder_config(), tiny_llm_config(), tokenizer or smol_tokenizer(),
                                   **kwargs)
    return model.eval(), processor


def random_coords(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 2.0, size=(n, 3)), axis=0).astype("float32")


THREE = {"A": "ALA", "C": "CYS", "D": "ASP", "E": "GLU", "F": "PHE", "G": "GLY", "H": "HIS", "I": "ILE",
         "K": "LYS", "L": "LEU", "M": "MET", "N": "ASN", "P": "PRO", "Q": "GLN", "R": "ARG", "S": "SER",
         "T": "THR", "V": "VAL", "W": "TRP", "Y": "TYR"}
PDB_SEQUENCE = "MKTAYIAKQRGAVLIPF"


def pdb_text(sequence: str = PDB_SEQUENCE, chain: str = "A", seed: int = 0) -> str:
    """A CA-only PDB chain with a random-walk trace (enough for structure alignment)."""
    xyz = np.cumsum(np.random.default_rng(seed).normal(0, 2.0, size=(len(sequence), 3)), axis=0)
    lines = [f"ATOM  {i:5d}  CA  {THREE[aa]} {chain}{i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00 80.00           C"
             for i, (aa, (x, y, z)) in enumerate(zip(sequence, xyz, strict=True), 1)]
    return "\n".join([*lines, "TER", "END"]) + "\n"
