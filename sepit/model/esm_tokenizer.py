"""ESM-2 tokenizer and architecture presets, built offline (no hub access).

The ESM-2 vocabulary is fixed (33 tokens, fair-esm order); real checkpoints ship the same vocab file, so a
tokenizer built here matches ``facebook/esm2_*`` exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from transformers import EsmConfig, EsmTokenizer

ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K",
             "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>"]
RESIDUES = frozenset("LAGVSERTIDPKQNFYMHWCXBUZO")

# (layers, hidden, heads); intermediate = 4 * hidden. Real sizes of the ESM-2 family, plus tiny for tests.
ESM_SIZES = {
    "tiny": (2, 32, 4),
    "t6_8M": (6, 320, 20),
    "t12_35M": (12, 480, 20),
    "t30_150M": (30, 640, 20),
    "t33_650M": (33, 1280, 20),
}


def esm_tokenizer() -> EsmTokenizer:
    """The ESM-2 tokenizer from the fixed vocabulary."""
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("\n".join(ESM_VOCAB) + "\n")
        return EsmTokenizer(vocab_file=str(vocab))


def esm_config(size: str = "tiny", max_positions: int = 1026, **overrides) -> EsmConfig:
    """An ESM-2 architecture config by size name (see ``ESM_SIZES``)."""
    if size not in ESM_SIZES:
        raise ValueError(f"unknown ESM-2 size {size!r}; choose one of {sorted(ESM_SIZES)}")
    layers, hidden, heads = ESM_SIZES[size]
    kwargs = dict(
        vocab_size=len(ESM_VOCAB), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=max_positions, position_embedding_type="rotary",
        pad_token_id=1, mask_token_id=32, cls_token_id=0, eos_token_id=2, token_dropout=True,
        emb_layer_norm_before=False, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-5,
    )
    kwargs.update(overrides)
    return EsmConfig(**kwargs)
