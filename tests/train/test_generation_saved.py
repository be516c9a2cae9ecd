"""A stage's final model folder carries the preset's decoding defaults in its generation config (issue 10)."""

from __future__ import annotations

import json

from sepit.train.config import load_train_config
from sepit.train.stages import stage1_plan
from tests.train.conftest import debug_overrides


def test_stage_save_writes_the_presets_generation_section(tiny_dataset, tmp_path):
    cfg = load_train_config("debug", debug_overrides(tiny_dataset, tmp_path, "generation.no_repeat_ngram_size=5",
                                                     "generation.repetition_penalty=1.3"))
    plan = stage1_plan(cfg, init_from="none")
    plan.save_final(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "generation_config.json").read_text())
    assert (saved["no_repeat_ngram_size"], saved["repetition_penalty"]) == (5, 1.3)
