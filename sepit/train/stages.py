"""The SEPIT stage recipes (DESIGN 2.3, 2.5, 2.6) on one engine.

Each recipe returns a :class:`StagePlan`: the model, its training rows, the collator, the optimizer groups
and what to save beside the weights. :func:`sepit.train.run.train_stage` runs any plan.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
from torch import nn

from sepit.data.store import DatasetStore
from sepit.errors import ConfigError
from sepit.generation_defaults import apply_generation_defaults
from sepit.model.build import apply_lora, build_sepit, load_sepit
from sepit.model.lora_merge import merge_sepit_lora
from sepit.model.moe import upcycle_sepit
from sepit.model.token_rows import train_all_rows
from sepit.train.collate import InstructionCollator
from sepit.train.config import TrainConfig
from sepit.train.data import ProteinCropper, instruction_items
from sepit.train.optim import param_groups
from sepit.train.parts import encoder_from_spec, llm_and_tokenizer, lora_kwargs, require_model_folder


@dataclass
class StagePlan:
    model: nn.Module
    rows: datasets.Dataset
    collator: Callable
    groups: list[dict]
    save_extra: Callable[[str], None] | None  # writes the processor/tokenizers into a model folder
    save_final: Callable[[Path], None]  # writes the complete final model folder
    cropper: ProteinCropper | None = None  # the collator's cropping (window, counts)


def _sepit_groups(model, cfg: TrainConfig, stage: int) -> list[dict]:
    o = cfg.stage(stage).optim
    return param_groups(model, {"encoder": (model.encoder, o.encoder_lr_scale),
                                "llm": (model.language_model, o.llm_lr_scale)}, o.lr, o.weight_decay)


def _sepit_plan(cfg: TrainConfig, stage: int, model, processor) -> StagePlan:
    spec = cfg.stage(stage)
    store = DatasetStore(cfg.dataset_dir(stage))
    rows = instruction_items(store, spec.data, cfg.seed, cfg.pooling_stride)
    augment = None
    if cfg.retrieval.enabled:
        from sepit.retrieval.training import training_context

        augment = training_context(cfg.retrieval, cfg.dataset_dir(stage), Path(cfg.output_dir),
                                   sorted(set(rows["accession"])), cfg.seed)
    collator = InstructionCollator(store, processor, spec.data.max_residues, spec.structure_dropout,
                                   spec.max_answer_tokens, spec.data.crop_window, augment=augment)
    rank = os.environ.get("RANK", "0")  # one cache file per process: ranks never write the same file
    rows = collator.pretokenize(rows, cfg.stage_dir(stage) / f"tokens-rank{rank}")

    def save_final(folder: Path) -> None:
        apply_generation_defaults(model.generation_config, dataclasses.asdict(cfg.generation))
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        if augment is not None:
            from sepit.retrieval.training import save_retrieval_settings

            save_retrieval_settings(folder, augment)

    return StagePlan(model, rows, collator, _sepit_groups(model, cfg, stage), processor.save_pretrained,
                     save_final, collator.proteins)


def stage1_plan(cfg: TrainConfig, init_from: str | None = None) -> StagePlan:
    """Caption instructions; encoder (+structure) + projector + LLM trained (LoRA optional), DESIGN 2.5.

    ``init_from``: a stage-0 output (default: this run's stage-0 model) or ``none`` (no warm-up: the
    encoder comes from ``encoder.pretrained`` or is random; the "without stage 0" ablation).
    """
    spec = cfg.stage(1)
    if init_from == "none":
        encoder = encoder_from_spec(cfg.encoder, spec.data.max_residues)
    else:
        encoder = str(require_model_folder(Path(init_from or cfg.model_dir(0)), "stage-0 encoder"))
    llm, tokenizer = llm_and_tokenizer(cfg.llm.name)
    model, processor = build_sepit(encoder, llm, tokenizer, pool_stride=cfg.pooling_stride,
                                   max_residues=spec.data.max_residues, on_too_long="truncate",
                                   freeze_encoder=spec.freeze_encoder, lora=lora_kwargs(cfg.lora))
    return _sepit_plan(cfg, 1, model, processor)


def stage2_plan(cfg: TrainConfig, init_from: str | None = None) -> StagePlan:
    """Upcycle the stage-1 LLM to a mixture of experts, freeze the encoder, train projector + LLM on open
    and closed-set instructions with the load-balancing loss (DESIGN 2.6). ``moe.num_experts: 0`` keeps
    the LLM dense (the "without MoE" ablation)."""
    folder = require_model_folder(Path(init_from or cfg.model_dir(1)), "stage-1 model")
    try:
        model, processor = load_sepit(folder, merge_lora=False)  # merged below, with the trainable flags reset
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{folder} is not a stage-1 sepit model folder: {err}") from None
    if model.config.is_moe:
        raise ConfigError(f"{folder} already holds a mixture-of-experts model; stage 2 starts from stage 1")
    if merge_sepit_lora(model):  # a dense LLM again: all of it trainable unless stage 2 adds its own LoRA
        model.language_model.requires_grad_(True)
        train_all_rows(model.get_input_embeddings().weight)
    moe = cfg.moe.num_experts > 0
    if moe:
        upcycle_sepit(model, cfg.moe.num_experts, cfg.moe.top_k, cfg.moe.aux_coef)
    model.freeze_encoder(cfg.stage(2).freeze_encoder)
    lora = lora_kwargs(cfg.lora, moe=moe)
    if lora:
        apply_lora(model, lora)
        for name, param in model.language_model.named_parameters():
            if name.endswith("mlp.gate.weight"):  # routers are new: train them fully
                param.requires_grad_(True)
    processor.max_residues = cfg.stage(2).data.max_residues
    processor.on_too_long = "truncate"
    return _sepit_plan(cfg, 2, model, processor)
