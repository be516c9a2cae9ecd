"""Run one stage: ``train_stage(cfg, stage)`` (what ``sepit train`` calls)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from sepit.config import save_config
from sepit.errors import ConfigError
from sepit.io_utils import atomic_dir
from sepit.train.config import TrainConfig
from sepit.train.data import crop_summary
from sepit.train.engine import SepitTrainer, training_arguments
from sepit.train.logging import JsonlLogger, plot_losses


def _plan(cfg: TrainConfig, stage: int, init_from: str | None):
    from sepit.train import stages

    if stage == 0:
        from sepit.train.stage0 import stage0_plan

        return stage0_plan(cfg, init_from)
    return (stages.stage1_plan if stage == 1 else stages.stage2_plan)(cfg, init_from)


def _checkpoint(ckpt_dir: Path, resume: bool, overwrite: bool) -> str | None:
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if resume:
        return last
    if last is not None and not overwrite:
        raise ConfigError(f"{ckpt_dir} already holds checkpoints; pass --resume to continue or --overwrite")
    if overwrite and ckpt_dir.parent.exists():
        shutil.rmtree(ckpt_dir.parent)
    return None


def train_stage(cfg: TrainConfig, stage: int, *, resume: bool = False, overwrite: bool = False,
                init_from: str | None = None, callbacks: list | None = None) -> Path:
    """Train stage ``stage`` and write ``<output_dir>/stage<N>/model`` (a complete model folder), with
    ``metrics.jsonl``, ``loss_stage<N>.png`` and ``sepit_train.yaml`` beside it. Returns the model folder."""
    cfg.stage(stage)  # validates the number
    out = cfg.stage_dir(stage)
    ckpt = _checkpoint(out / "checkpoints", resume, overwrite)
    set_seed(cfg.seed)
    plan = _plan(cfg, stage, init_from)  # every config/data/model error surfaces here, before training
    args = training_arguments(cfg, cfg.stage(stage).optim, out / "checkpoints")
    trainer = SepitTrainer(model=plan.model, args=args, train_dataset=plan.rows, data_collator=plan.collator,
                           eval_dataset=_eval_dataset(cfg, stage, plan),
                           param_groups=plan.groups, save_extra=plan.save_extra,
                           crop_counter=plan.cropper.counter if plan.cropper else None,
                           callbacks=[JsonlLogger(out / "metrics.jsonl"), *(callbacks or [])])
    crops = _report_crops(plan, stage, trainer.args.should_save)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    if trainer.args.should_save:
        engine = "deepspeed" if trainer.is_deepspeed_enabled else ("fsdp" if trainer.is_fsdp_enabled else (
            "ddp" if trainer.args.world_size > 1 else "single"))
        _finish(cfg, stage, plan, out, result, time.time() - started,
                {"world_size": trainer.args.world_size, "engine": engine, "crop": crops})
    return cfg.model_dir(stage)


def _eval_dataset(cfg: TrainConfig, stage: int, plan):
    """Eval rows (none without ``eval.steps``), tokenised once like the training rows when the collator can."""
    if not cfg.eval.steps:
        return None
    rows = eval_rows(cfg, stage)
    return plan.collator.pretokenize(rows) if hasattr(plan.collator, "pretokenize") else rows


def eval_rows(cfg: TrainConfig, stage: int):
    """Held-out rows for the eval loss: the stage's data spec on ``cfg.eval.split``, ``cfg.eval.max_items``."""
    from dataclasses import replace

    from sepit.data.store import DatasetStore
    from sepit.train.data import instruction_items, protein_items

    spec = replace(cfg.stage(stage).data, split=cfg.eval.split, max_items=cfg.eval.max_items)
    store = DatasetStore(cfg.dataset_dir(stage))
    if stage == 0:
        return protein_items(store, spec, cfg.seed)
    return instruction_items(store, spec, cfg.seed, cfg.pooling_stride)


def _report_crops(plan, stage: int, main_process: bool) -> dict | None:
    """Per-epoch cropping of the training rows, printed once (main process) and kept for summary.json."""
    if plan.cropper is None:
        return None
    c = plan.cropper
    crops = crop_summary(c.store, plan.rows, c.max_residues, c.window)
    if main_process and crops["rows_cropped"]:
        print(f"stage {stage}: {crops['rows_cropped']} of {crops['rows']} training rows have proteins longer than "
              f"max_residues={c.max_residues}: cropped ({c.window} window), {crops['residues_dropped']} residues "
              "dropped per epoch", file=sys.stderr)
    return crops


def _finish(cfg: TrainConfig, stage: int, plan, out: Path, result, seconds: float, run_info: dict) -> None:
    with atomic_dir(cfg.model_dir(stage), overwrite=True) as tmp:
        plan.save_final(tmp)
        save_config(cfg, tmp / "sepit_train.yaml")
    save_config(cfg, out / "sepit_train.yaml")
    plot_losses(out / "metrics.jsonl", out / f"loss_stage{stage}.png", f"{cfg.name}: stage {stage}")
    summary = {"stage": stage, "steps": result.global_step, "train_loss": result.training_loss,
               "seconds": round(seconds, 1), "items": len(plan.rows), **run_info}
    if plan.cropper is not None:  # what the main process's data loader cropped since the run (re)started
        summary["crop"] = {**(summary.get("crop") or {}), "seen": plan.cropper.counter.as_log()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
