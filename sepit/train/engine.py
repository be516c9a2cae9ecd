"""The one training engine for every stage: the HF Trainer (DDP, FSDP and DeepSpeed ZeRO come from it).

``SepitTrainer`` adds what SEPIT needs on top: per-module learning-rate groups (built by
:func:`sepit.train.optim.param_groups`), logging of component losses (stage-0 losses, MoE auxiliary loss)
and of cropped proteins, and saving the processor into every checkpoint so each checkpoint is a complete,
loadable model folder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Trainer, TrainingArguments

from sepit.train.config import OptimSpec, TrainConfig
from sepit.train.data import CropCounter
from sepit.train.optim import build_optimizer


class SepitTrainer(Trainer):
    def __init__(self, *args, param_groups: list[dict], save_extra: Callable[[str], None] | None = None,
                 crop_counter: CropCounter | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._groups = param_groups
        self._save_extra = save_extra
        self._crop_counter = crop_counter
        self._components: dict[str, list[float]] = defaultdict(list)
        self.model_accepts_loss_kwargs = False  # per-batch mean loss; the Trainer scales it for accumulation

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer = build_optimizer(self._groups)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = outputs["loss"]
        for key, value in (outputs.items() if model.training else ()):  # evaluation: eval_loss only
            if key != "loss" and key.endswith("loss") and torch.is_tensor(value) and value.numel() == 1:
                self._components[key].append(float(value.detach()))
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation is the loss alone, for every stage (the stage-0 model takes no ``labels``)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach().mean(), None, None

    def _load_best_model(self) -> None:
        """``load_best_model_at_end`` through the same strict reload as a resume (legacy LayerNorm names)."""
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_best_model()
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._components:
            for key, values in self._components.items():
                logs[key] = round(sum(values) / len(values), 6)
            self._components.clear()
        if "loss" in logs and self._crop_counter is not None:  # this process's data loader, since (re)start
            logs.update(self._crop_counter.as_log())
        super().log(logs, start_time)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Strict reload of a checkpoint's weights. The stock path loads the raw state dict, but transformers
        writes ESM LayerNorms under legacy names (gamma/beta), so they were silently skipped on resume."""
        model = model if model is not None else self.model
        files = checkpoint_files(Path(resume_from_checkpoint))
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not files:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        own = model.state_dict()
        state = {}
        for f in files:
            state.update({_current_name(k, own): v for k, v in load_file(str(f)).items()})
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = {k for k in missing if k.endswith("lm_head.weight") and model.config.tie_word_embeddings}
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"checkpoint {resume_from_checkpoint} does not match the model: missing "
                               f"{sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}")
        if tied:
            model.tie_weights()

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        if self.args.should_save and self._save_extra is not None:
            self._save_extra(output_dir or self.args.output_dir)


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors file(s) of a checkpoint folder (one file or an index of shards)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def _current_name(key: str, own: dict) -> str:
    """Legacy ``.gamma``/``.beta`` -> ``.weight``/``.bias`` when that is the model's name for it."""
    for old, new in ((".gamma", ".weight"), (".beta", ".bias")):
        if key.endswith(old) and key not in own and key[: -len(old)] + new in own:
            return key[: -len(old)] + new
    return key


def resolve_precision(precision: str) -> tuple[bool, bool]:
    """(bf16, fp16): ``auto`` = bf16 on a CUDA device that supports it, else fp32 (CPU bf16 is ~300x slower)."""
    if precision == "auto":
        return (torch.cuda.is_available() and torch.cuda.is_bf16_supported()), False
    return precision == "bf16", precision == "fp16"


def training_arguments(cfg: TrainConfig, optim: OptimSpec, output_dir: Path) -> TrainingArguments:
    bf16, fp16 = resolve_precision(cfg.precision)
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=optim.batch_size,
        gradient_accumulation_steps=optim.grad_accum,
        learning_rate=optim.lr,
        weight_decay=optim.weight_decay,
        lr_scheduler_type=optim.scheduler,
        warmup_steps=optim.warmup_ratio,
        num_train_epochs=optim.epochs,
        max_steps=optim.max_steps,
        max_grad_norm=optim.max_grad_norm,
        gradient_checkpointing=optim.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if optim.length_grouping else "random",
        length_column_name="length",
        logging_steps=cfg.logging_steps,
        save_steps=cfg.eval.steps if cfg.eval.keep_best else cfg.save_steps,
        eval_strategy="steps" if cfg.eval.steps else "no",
        eval_steps=cfg.eval.steps or None,
        per_device_eval_batch_size=optim.batch_size,
        prediction_loss_only=True,
        load_best_model_at_end=cfg.eval.keep_best,
        metric_for_best_model=cfg.eval.metric if cfg.eval.keep_best else None,
        greater_is_better=cfg.eval.greater_is_better if cfg.eval.keep_best else None,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not torch.cuda.is_available(),
        deepspeed=cfg.deepspeed,
        remove_unused_columns=False,
        dataloader_num_workers=cfg.dataloader_workers,
        dataloader_persistent_workers=cfg.dataloader_workers > 0,
        report_to=[],
        ddp_find_unused_parameters=True,
        save_only_model=False,
    )
