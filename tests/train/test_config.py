"""Presets parse and validate; wrong values fail before any training starts."""

from __future__ import annotations

import pytest

from sepit.errors import ConfigError
from sepit.train.config import PRESETS, load_train_config
from sepit.train.run import train_stage


@pytest.mark.parametrize("name", PRESETS)
def test_presets_parse(name):
    cfg = load_train_config(name)
    assert cfg.name == name
    assert cfg.stage(1).structure_dropout == pytest.approx(0.15)
    assert cfg.stage(2).freeze_encoder and "closed" in cfg.stage(2).data.tasks
    assert cfg.moe.num_experts == 4 and cfg.moe.top_k == 1 and cfg.moe.aux_coef == pytest.approx(0.01)


def test_paper_preset_has_paper_settings():
    cfg = load_train_config("paper")
    assert cfg.encoder.pretrained == "facebook/esm2_t33_650M_UR50D"
    assert "TinyLlama" in cfg.llm.name and cfg.encoder.num_kernels == 128
    assert cfg.stage(1).optim.lr == pytest.approx(1e-4) and cfg.stage(1).optim.encoder_lr_scale == pytest.approx(0.1)
    assert cfg.stage(1).optim.epochs == 4 and cfg.precision == "bf16"


@pytest.mark.parametrize("override, message", [
    ("stage1.optim.lrr=1", "unknown key"),
    ("moe.top_k=5", "top_k"),
    ("stage1.structure_dropout=1.5", "structure_dropout"),
    ("stage1.optim.batch_size=0", "positive"),
    ("pooling_stride=0", "pooling_stride"),
    ("precision=fp8", "not one of"),
    ("stage1.optim.lr=abc", "expected float"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config("debug", [override])


def test_missing_dataset_fails_before_training(tmp_path):
    cfg = load_train_config("debug", [f"output_dir={tmp_path}", f"dataset={tmp_path / 'nope'}"])
    with pytest.raises(ConfigError, match="not a built sepit dataset"):
        train_stage(cfg, 1, init_from="none")
    assert not (tmp_path / "stage1" / "model").exists()


def test_stage1_without_stage0_output_is_named(tmp_path, tiny_dataset):
    cfg = load_train_config("debug", [f"output_dir={tmp_path}", f"dataset={tiny_dataset}"])
    with pytest.raises(ConfigError, match="stage-0 encoder not found"):
        train_stage(cfg, 1)


def test_stage2_rejects_a_non_stage1_folder(tmp_path, tiny_dataset):
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "config.json").write_text('{"model_type": "sepit_encoder"}')
    cfg = load_train_config("debug", [f"output_dir={tmp_path}", f"dataset={tiny_dataset}"])
    with pytest.raises(ConfigError, match="not a stage-1 sepit model"):
        train_stage(cfg, 2, init_from=str(tmp_path / "fake"))
