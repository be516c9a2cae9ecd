"""End to end on the debug preset: the three stages chain, each writes a complete loadable model folder, the
learning-rate ratios really reach the optimizer, and stage 2 is a mixture of experts with its aux loss logged."""

from __future__ import annotations

import json

import pytest
import torch

from sepit.api import Sepit
from sepit.train.config import load_train_config
from sepit.train.run import train_stage
from sepit.train.stages import stage1_plan
from tests.train.conftest import debug_overrides


@pytest.fixture(scope="module")
def debug_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("debug-run")
    cfg = load_train_config("debug", debug_overrides(tiny_dataset, out))
    folders = [train_stage(cfg, stage) for stage in (0, 1, 2)]
    return cfg, folders


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_stages_chain(debug_run):
    cfg, (s0, s1, s2) = debug_run
    assert (s0 / "encoder" / "config.json").is_file()
    for stage, folder in zip((1, 2), (s1, s2), strict=True):
        assert (folder / "model.safetensors").is_file() and (folder / "processor_config.json").exists() or \
            any(folder.glob("*.json"))
        out = cfg.stage_dir(stage)
        assert (out / f"loss_stage{stage}.png").stat().st_size > 1000
        records = _records(out / "metrics.jsonl")
        assert any("loss" in r for r in records)
    stage0 = _records(cfg.stage_dir(0) / "metrics.jsonl")
    assert all(k in stage0[0] for k in ("contrastive_loss", "mlm_loss", "denoise_loss"))
    assert any("aux_loss" in r for r in _records(cfg.stage_dir(2) / "metrics.jsonl"))


def test_stage2_model_is_moe_and_answers(debug_run):
    _, (_, _, s2) = debug_run
    sepit = Sepit.from_pretrained(s2)
    assert sepit.model.config.is_moe
    assert sepit.model.config.text_config.num_local_experts == 4
    answer = sepit.ask("Does this protein bind heme?", sequence="MKTAYIAKQRQISFVKSHFSRQ", choices=["yes", "no"],
                       max_new_tokens=4)
    assert set(answer.probabilities) == {"yes", "no"}
    assert sum(answer.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_stage1_encoder_starts_from_stage0(debug_run):
    cfg, (s0, s1, _) = debug_run
    from safetensors.torch import load_file

    warm = load_file(str(s0 / "encoder" / "model.safetensors"))
    key = next(k for k in warm if k.endswith("word_embeddings.weight"))
    plan = stage1_plan(cfg)
    got = dict(plan.model.encoder.named_parameters())[key]
    assert torch.equal(got.detach(), warm[key])


def test_learning_rate_groups_are_applied(debug_run):
    cfg, _ = debug_run
    plan = stage1_plan(cfg)
    lr = cfg.stage1.optim.lr
    by_name = {g["name"]: g for g in plan.groups}
    assert by_name["encoder"]["lr"] == pytest.approx(lr * cfg.stage1.optim.encoder_lr_scale)
    assert by_name["llm"]["lr"] == pytest.approx(lr * cfg.stage1.optim.llm_lr_scale)
    assert by_name["new_modules"]["lr"] == pytest.approx(lr)
    projector = {id(p) for p in plan.model.projector.parameters()}
    assert projector <= {id(p) for p in by_name["new_modules"]["params"]}
    llm = {id(p) for p in plan.model.language_model.parameters()}
    assert llm == {id(p) for p in by_name["llm"]["params"]}
    # the optimizer built from the groups really carries these rates
    from sepit.train.optim import build_optimizer

    opt = build_optimizer(plan.groups)
    assert sorted(g["lr"] for g in opt.param_groups) == sorted(g["lr"] for g in plan.groups)


def test_lora_stage1_then_moe_lora_stage2(debug_run, tmp_path):
    """LoRA in stage 1 is merged before upcycling; stage 2 puts LoRA on attention and the fused experts and
    trains the routers fully (the demo preset's path)."""
    cfg, (s0, _, _) = debug_run
    over = debug_overrides(cfg.dataset, tmp_path, "lora.enabled=true", "lora.r=4")
    lcfg = load_train_config("debug", over)
    s1 = train_stage(lcfg, 1, init_from=str(s0))
    assert json.loads((s1 / "config.json").read_text())["lora"]["r"] == 4
    from sepit.train.stages import stage2_plan

    plan = stage2_plan(lcfg)
    trainable = {n for n, p in plan.model.named_parameters() if p.requires_grad}
    assert any("experts" in n and "lora" in n for n in trainable)
    assert any(n.endswith("mlp.gate.weight") for n in trainable)
    assert not any(n.startswith("encoder.") for n in trainable)
    s2 = train_stage(lcfg, 2)
    sepit = Sepit.from_pretrained(s2)
    assert sepit.model.config.is_moe and sepit.model.config.lora["r"] == 4
    assert sepit.ask("What does it do?", sequence="MKTAYIAKQR", max_new_tokens=3).text is not None


def test_gradient_checkpointing_with_accumulation(tiny_dataset, tmp_path):
    cfg = load_train_config("debug", debug_overrides(
        tiny_dataset, tmp_path, "stage1.optim.gradient_checkpointing=true", "stage1.optim.grad_accum=2",
        "stage1.optim.max_steps=2", "stage1.optim.batch_size=2"))
    folder = train_stage(cfg, 1, init_from="none")
    summary = json.loads((cfg.stage_dir(1) / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["train_loss"] == summary["train_loss"]  # finite, not NaN
    assert (folder / "model.safetensors").is_file()
