"""End to end on the debug preset: the three stages chain, each writes a complete loadable model folder, the
learning-rate ratios really reach the optimizer, and stage 2 is a mixture of experts with its aux loss logged."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import TrainerCallback

from sepit.api import Sepit
from sepit.data.store import DatasetStore
from sepit.model.moe import StraightThroughRouter
from sepit.model.processor import PROCESSOR_FILE
from sepit.train.config import load_train_config
from sepit.train.data import instruction_items, protein_items
from sepit.train.run import train_stage
from sepit.train.stages import stage1_plan
from tests.train.conftest import debug_overrides


class TrainerProbe(TrainerCallback):
    """What the Trainer itself trains with: its optimizer's groups at the first step (name, lr, weight decay,
    parameter ids) and how often the attention of the first LLM and encoder layers runs per optimizer step (a
    checkpointed layer runs it again in the backward pass)."""

    def __init__(self):
        self.groups: list[tuple] | None = None
        self.model = None
        self.calls = {"llm": 0, "encoder": 0}
        self.calls_per_step: dict[str, int] | None = None
        self._hooks = []

    def _count(self, key):
        def hook(module, args, output):
            self.calls[key] += 1
        return hook

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.model = model
        # inside the layers: a checkpointed layer wraps its forward, so hooks on the layer itself fire only once
        self._hooks = [model.language_model.model.layers[0].self_attn.register_forward_hook(self._count("llm")),
                       model.encoder.esm.encoder.layer[0].attention.register_forward_hook(self._count("encoder"))]

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        if self.groups is None:
            self.groups = [(g["name"], g["lr"], g["weight_decay"], {id(p) for p in g["params"]})
                           for g in optimizer.param_groups]

    def on_step_end(self, args, state, control, **kwargs):
        if self.calls_per_step is None:
            self.calls_per_step = dict(self.calls)
            for handle in self._hooks:
                handle.remove()


@pytest.fixture(scope="module")
def debug_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("debug-run")
    cfg = load_train_config("debug", debug_overrides(tiny_dataset, out))
    probe = TrainerProbe()
    folders = [train_stage(cfg, stage, callbacks=[probe] if stage == 1 else None) for stage in (0, 1, 2)]
    return cfg, folders, probe


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_stages_chain(debug_run):
    cfg, (s0, s1, s2), _ = debug_run
    assert (s0 / "encoder" / "config.json").is_file()
    for stage, folder in zip((1, 2), (s1, s2), strict=True):
        assert (folder / "model.safetensors").is_file()
        assert (folder / PROCESSOR_FILE).is_file() and (folder / "tokenizer_config.json").is_file()
        out = cfg.stage_dir(stage)
        assert (out / f"loss_stage{stage}.png").stat().st_size > 1000
        records = _records(out / "metrics.jsonl")
        assert any("loss" in r for r in records)
    store = DatasetStore(cfg.dataset)
    for stage in (0, 1, 2):  # crops counted in the log and the summary, against the proteins' own lengths
        summary = json.loads((cfg.stage_dir(stage) / "summary.json").read_text())
        max_residues = cfg.stage(stage).data.max_residues
        plan_rows = (protein_items if stage == 0 else instruction_items)(store, cfg.stage(stage).data, cfg.seed)
        lengths = [len(store.protein(a).sequence) for a in plan_rows["accession"]]
        crop = summary["crop"]
        assert crop["rows"] == len(lengths) and crop["window"] == "start"
        assert crop["rows_cropped"] == sum(n > max_residues for n in lengths) > 0
        assert crop["residues_dropped"] == sum(max(0, n - max_residues) for n in lengths)
        last = [r for r in _records(cfg.stage_dir(stage) / "metrics.jsonl") if "loss" in r][-1]
        assert last["crop_proteins_seen"] == len(lengths)  # one epoch: every row batched once
        assert last["crop_cropped"] == crop["rows_cropped"] and last["crop_residues_dropped"] == crop[
            "residues_dropped"] == crop["seen"]["crop_residues_dropped"]
    stage0 = _records(cfg.stage_dir(0) / "metrics.jsonl")
    assert all(k in stage0[0] for k in ("contrastive_loss", "mlm_loss", "denoise_loss"))
    assert any("aux_loss" in r for r in _records(cfg.stage_dir(2) / "metrics.jsonl"))


def test_stage2_model_is_moe_and_answers(debug_run):
    _, (_, s1, s2), _ = debug_run
    sepit = Sepit.from_pretrained(s2)
    assert sepit.model.config.is_moe
    assert sepit.model.config.text_config.num_local_experts == 4
    layers = sepit.model.language_model.model.layers
    assert all(isinstance(layer.mlp.gate, StraightThroughRouter) for layer in layers)
    from safetensors.torch import load_file

    dense = load_file(str(s1 / "model.safetensors"))  # stage 2 trained the experts' copies of the stage-1 MLP
    key = "language_model.model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(layers[0].mlp.experts.down_proj[0].detach(), dense[key])
    answer = sepit.ask("Does this protein bind heme?", sequence="MKTAYIAKQRQISFVKSHFSRQ", choices=["yes", "no"],
                       max_new_tokens=4)
    assert set(answer.probabilities) == {"yes", "no"}
    assert answer.choice == max(answer.probabilities, key=answer.probabilities.get)


def test_stage1_encoder_starts_from_stage0(debug_run):
    cfg, (s0, s1, _), _ = debug_run
    from safetensors.torch import load_file

    warm = load_file(str(s0 / "encoder" / "model.safetensors"))
    key = next(k for k in warm if k.endswith("word_embeddings.weight"))
    plan = stage1_plan(cfg)
    got = dict(plan.model.encoder.named_parameters())[key]
    assert torch.equal(got.detach(), warm[key])


def test_learning_rate_groups_are_applied(debug_run):
    """The Trainer's own optimizer (not one rebuilt here) holds the per-module rates over the right parameters."""
    cfg, _, probe = debug_run
    o = cfg.stage1.optim
    model = probe.model
    groups = {name: (lr, decay, ids) for name, lr, decay, ids in probe.groups}
    assert set(groups) == {"encoder", "llm", "new_modules"}
    assert groups["encoder"][0] == pytest.approx(o.lr * o.encoder_lr_scale) != pytest.approx(o.lr)
    assert groups["llm"][0] == pytest.approx(o.lr * o.llm_lr_scale)
    assert groups["new_modules"][0] == pytest.approx(o.lr)
    assert groups["encoder"][2] == {id(p) for p in model.encoder.parameters()}  # structure module included
    assert groups["llm"][2] == {id(p) for p in model.language_model.parameters()}
    assert groups["new_modules"][2] == {id(p) for p in model.projector.parameters()}
    assert all(decay == o.weight_decay for _, decay, _ in groups.values())


def test_lora_stage1_then_moe_lora_stage2(debug_run, tmp_path):
    """LoRA in stage 1 is merged before upcycling; stage 2 puts LoRA on attention and the fused experts and
    trains the routers fully (the demo preset's path)."""
    cfg, (s0, _, _), _ = debug_run
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
    assert json.loads((s2 / "config.json").read_text())["lora"]["r"] == 4  # saved unmerged (stage 2 trains it)
    assert sepit.model.config.is_moe and sepit.model.config.lora is None  # folded into the weights at load
    text = sepit.ask("What does it do?", sequence="MKTAYIAKQR", max_new_tokens=3).text
    assert isinstance(text, str) and len(sepit.processor.tokenizer(text, add_special_tokens=False).input_ids) <= 3


def test_gradient_checkpointing_with_accumulation(debug_run, tiny_dataset, tmp_path):
    """Checkpointing really on: each LLM and encoder layer runs its forward twice per micro-batch (once more in
    the backward pass), against once in the same stage without checkpointing (the debug run's probe)."""
    _, _, plain = debug_run
    cfg = load_train_config("debug", debug_overrides(
        tiny_dataset, tmp_path, "stage1.optim.gradient_checkpointing=true", "stage1.optim.grad_accum=2",
        "stage1.optim.max_steps=2", "stage1.optim.batch_size=2"))
    probe = TrainerProbe()
    folder = train_stage(cfg, 1, init_from="none", callbacks=[probe])
    assert plain.calls_per_step == {"llm": 1, "encoder": 1}
    assert probe.calls_per_step == {"llm": 2 * 2, "encoder": 2 * 2}  # 2 micro-batches, each run twice
    assert probe.model.is_gradient_checkpointing
    summary = json.loads((cfg.stage_dir(1) / "summary.json").read_text())
    assert summary["steps"] == 2 and math.isfinite(summary["train_loss"])
    assert (folder / "model.safetensors").is_file()
