"""Build a SEPIT model for stage 1 (DESIGN 2.5) from its parts, and put LoRA on its LLM.

    model, processor = build_sepit(encoder="runs/stage0", llm="smollm2-135m-instruct", freeze_encoder=False)
    model.save_pretrained(out); processor.save_pretrained(out)   # or save_sepit(out, model, processor)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import LoraConfig

from sepit.errors import ConfigError
from sepit.generation_defaults import apply_generation_defaults
from sepit.model.configuration import SepitConfig
from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.llm import LlmSpec, load_llm, load_llm_tokenizer
from sepit.model.lora import inject_lora, lora_to_dict
from sepit.model.lora_merge import merge_sepit_lora
from sepit.model.processor import SepitProcessor, add_protein_tokens
from sepit.model.sepit import SepitForConditionalGeneration

EncoderSpec = str | Path | SepitEncoderConfig | SepitEncoderModel


def load_encoder(encoder: EncoderSpec) -> SepitEncoderModel:
    """A stage-0 encoder: a model, a config (random weights) or a folder (or its ``encoder/`` subfolder)."""
    if isinstance(encoder, SepitEncoderModel):
        return encoder
    if isinstance(encoder, SepitEncoderConfig):
        return SepitEncoderModel(encoder)
    folder = Path(encoder)
    if (folder / "encoder" / "config.json").is_file():
        folder = folder / "encoder"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"no encoder found at {encoder}: expected a folder with config.json (stage-0 output)")
    return SepitEncoderModel.from_pretrained(folder)


def build_sepit(encoder: EncoderSpec, llm: LlmSpec, tokenizer=None, *, pool_stride: int = 1,
                feature_layer: int = -2, max_residues: int = 1022, on_too_long: str = "error",
                freeze_encoder: bool = False, lora: LoraConfig | dict | None = None,
                ) -> tuple[SepitForConditionalGeneration, SepitProcessor]:
    """Compose encoder + fresh projector + LLM; add the protein tokens and resize the LLM embeddings.

    ``llm``: offline name (``smollm2-135m-instruct``), folder, hub id, config (needs ``tokenizer``) or model.
    Returns the model and its processor (same pooling stride).
    """
    enc = load_encoder(encoder)
    language_model = load_llm(llm)
    tok = load_llm_tokenizer(llm, tokenizer)
    token_ids = add_protein_tokens(tok)
    if language_model.get_input_embeddings().num_embeddings < len(tok):
        language_model.resize_token_embeddings(len(tok))  # keeps input/output tying (SmolLM2 ties)
    attn = {"text_config": language_model.config._attn_implementation,
            "encoder_config": enc.config._attn_implementation}
    config = SepitConfig(encoder_config=enc.config, text_config=language_model.config,
                         protein_pool_stride=pool_stride, protein_feature_layer=feature_layer, **token_ids)
    # a new composite config resets its sub-configs' attention implementation: give the built parts theirs back
    config._attn_implementation = {"": attn["text_config"], **attn}
    model = SepitForConditionalGeneration(config, encoder=enc, language_model=language_model)
    model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    apply_generation_defaults(model.generation_config)
    if freeze_encoder:
        model.freeze_encoder()
    if lora is not None:
        apply_lora(model, lora)
    processor = SepitProcessor(tok, pool_stride=pool_stride, max_residues=max_residues, on_too_long=on_too_long)
    return model, processor


def apply_lora(model: SepitForConditionalGeneration, lora: LoraConfig | dict) -> SepitForConditionalGeneration:
    """LoRA on the LLM (DESIGN 2.5 option); recorded in the config so save/load rebuilds the same modules.

    Dense Llama: e.g. ``{"r": 8, "target_modules": ["q_proj", "v_proj"]}``. MoE (Mixtral experts):
    ``{"r": 8, "target_parameters": ["experts.gate_up_proj", "experts.down_proj"]}``.
    """
    if model.config.lora:
        raise ConfigError("the LLM already has LoRA adapters")
    spec = lora_to_dict(lora)
    inject_lora(model.language_model, spec)
    model.train_new_token_rows()
    model.config.lora = spec
    return model


def save_sepit(folder: str | Path, model: SepitForConditionalGeneration, processor: SepitProcessor) -> Path:
    """One folder: config.json, model.safetensors, generation config, both tokenizers, processor."""
    model.save_pretrained(folder)
    return processor.save_pretrained(folder)


def load_sepit(folder: str | Path, merge_lora: bool = True, dtype: torch.dtype | None = None, **kwargs,
               ) -> tuple[SepitForConditionalGeneration, SepitProcessor]:
    """Inverse of :func:`save_sepit` (offline, safetensors only).

    ``merge_lora`` (default): LoRA adapters saved unmerged (stage 2 trains them) are folded into the base weights
    in fp32 before any cast to ``dtype``, so inference runs plain layers: PEFT's wrappers on the fused MoE experts
    rebuild every expert's full weight at each forward (issue 10: 11.6x slower). ``merge_lora=False`` keeps the
    adapters (to continue training them). Decoding defaults missing from the folder's generation config are
    added (:mod:`sepit.generation_defaults`).
    """
    merge = merge_lora and _has_lora(folder)
    load_dtype = torch.float32 if merge else dtype
    model = SepitForConditionalGeneration.from_pretrained(
        folder, use_safetensors=True, **kwargs, **({} if load_dtype is None else {"dtype": load_dtype}))
    if merge:
        merge_sepit_lora(model)
        if dtype is not None:
            model.to(dtype)
    apply_generation_defaults(model.generation_config, saved=folder)
    return model, SepitProcessor.from_pretrained(folder)


def _has_lora(folder: str | Path) -> bool:
    config = Path(folder) / "config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("lora"))
