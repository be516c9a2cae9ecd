"""A stage interrupted after k steps and resumed with --resume gives the same losses and final weights as an
uninterrupted run with the same seed (checkpoints carry optimizer, scheduler and RNG state)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from sepit.train.config import load_train_config
from sepit.train.run import train_stage
from tests.train.conftest import debug_overrides

STEPS, STOP = 6, 3


class StopAt(TrainerCallback):
    """Simulates a killed job: stops right after step ``k`` (its checkpoint is written first)."""

    def __init__(self, k: int):
        self.k = k

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.k:
            control.should_save = True
            control.should_training_stop = True
        return control


def _cfg(dataset, out):
    return load_train_config("debug", debug_overrides(
        dataset, out, "stage1.optim.max_steps=6", "stage1.optim.batch_size=2", "save_steps=3",
        "stage1.structure_dropout=0.5", "stage1.data.max_items=12"))


def _losses(cfg):
    rows = [json.loads(x) for x in (cfg.stage_dir(1) / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_interrupted_then_resumed_equals_uninterrupted(tiny_dataset, tmp_path):
    full = _cfg(tiny_dataset, tmp_path / "full")
    part = _cfg(tiny_dataset, tmp_path / "part")
    train_stage(full, 1, init_from="none")
    train_stage(part, 1, init_from="none", callbacks=[StopAt(STOP)])
    assert max(_losses(part)) == STOP
    with pytest.raises(Exception, match="--resume"):
        train_stage(part, 1, init_from="none")  # refuses to silently restart over checkpoints
    train_stage(part, 1, init_from="none", resume=True)
    a, b = _losses(full), _losses(part)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4, abs=1e-4), step
    wa = load_file(str(full.model_dir(1) / "model.safetensors"))
    wb = load_file(str(part.model_dir(1) / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-5, msg=key)
