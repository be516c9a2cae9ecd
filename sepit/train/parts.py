"""Build the model parts a stage starts from: encoder from a spec, tiny/real LLM, LoRA settings."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, LlamaConfig

from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.esm_tokenizer import esm_config
from sepit.resources import SMOLLM2, resolve_model
from sepit.train.config import EncoderSpec, LoraSpec, TrainConfig

TINY_LLM = "tiny"


def encoder_from_spec(spec: EncoderSpec, max_residues: int) -> SepitEncoderModel:
    """A fresh structure-aware encoder: pretrained ESM-2 weights (hub id or folder) or a random architecture."""
    structure = dict(num_kernels=spec.num_kernels, struct_embed_scale=spec.struct_embed_scale,
                     use_plddt=spec.use_plddt)
    if spec.pretrained:
        return SepitEncoderModel.from_esm(spec.pretrained, attn_implementation=spec.attn_implementation, **structure)
    esm = esm_config(spec.size, max_positions=max(max_residues + 2, 1026))
    esm._attn_implementation = spec.attn_implementation
    return SepitEncoderModel(SepitEncoderConfig(esm_config=esm, **structure))


def llm_and_tokenizer(name: str):
    """(llm spec for ``build_sepit``, tokenizer spec). ``tiny``: a random 2-layer Llama sized for tests,
    with SmolLM2's tokenizer and chat template."""
    if name != TINY_LLM:
        return name, None
    tok = AutoTokenizer.from_pretrained(resolve_model(SMOLLM2))
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    return config, tok


def lora_kwargs(spec: LoraSpec, moe: bool = False) -> dict | None:
    """PEFT LoraConfig kwargs. On an MoE LLM the fused expert weights get adapters too (so experts can
    diverge), through ``target_parameters``."""
    if not spec.enabled:
        return None
    out = {"r": spec.r, "lora_alpha": spec.alpha, "lora_dropout": spec.dropout,
           "target_modules": list(spec.target_modules)}
    if moe:  # PEFT's LoRA on raw parameters (fused experts) supports no dropout
        out["target_parameters"] = ["experts.gate_up_proj", "experts.down_proj"]
        out["lora_dropout"] = 0.0
    return out


def require_model_folder(path: Path, what: str) -> Path:
    from sepit.errors import ConfigError

    if not (Path(path) / "config.json").is_file():
        raise ConfigError(f"{what} not found at {path} (no config.json); run the previous stage first or "
                          "pass --init-from FOLDER")
    return Path(path)


def describe(cfg: TrainConfig) -> str:
    return f"{cfg.name}: encoder={cfg.encoder.pretrained or cfg.encoder.size} llm={cfg.llm.name}"
