"""Training reads the valid split: eval loss every N steps in metrics.jsonl and the plot; the best checkpoint by
eval loss becomes the stage's model (debug preset, a few steps)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from sepit.errors import ConfigError
from sepit.train.config import load_train_config
from sepit.train.run import train_stage
from tests.train.conftest import debug_overrides


def test_eval_loss_logged_and_best_checkpoint_kept(tiny_dataset, tmp_path):
    cfg = load_train_config("debug", debug_overrides(tiny_dataset, tmp_path, "eval.steps=1", "eval.max_items=4",
                                                     "eval.keep_best=true", "stage0.data.max_items=12"))
    final = train_stage(cfg, 0)
    records = [json.loads(line) for line in (cfg.stage_dir(0) / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval_loss"] for r in records if "eval_loss" in r}
    assert sorted(evals) == [1, 2, 3]
    assert not any("contrastive_loss" in r for r in records if "eval_loss" in r)  # eval kept out of train logs
    best = min(evals, key=evals.get)
    ckpts = cfg.stage_dir(0) / "checkpoints"
    got = load_file(str(final / "model.safetensors"))
    want = load_file(str(ckpts / f"checkpoint-{best}" / "model.safetensors"))
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    if best != 3 and (ckpts / "checkpoint-3").is_dir():  # not simply the last weights
        last = load_file(str(ckpts / "checkpoint-3" / "model.safetensors"))
        assert any(not torch.equal(got[k], last[k]) for k in want)


def test_keep_best_needs_eval_steps(tiny_dataset, tmp_path):
    with pytest.raises(ConfigError, match="eval.steps"):
        load_train_config("debug", debug_overrides(tiny_dataset, tmp_path, "eval.keep_best=true"))
