"""Inference loads merged weights (issue 10 item 1): a stage-2 style folder (MoE, LoRA on the fused experts and
attention, adapters saved unmerged) is folded at load; outputs equal the unmerged model's."""

import json

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from tiny_sepit import ANSWERS, QUESTIONS, SEQS, random_coords, tiny_sepit

from sepit.generation_defaults import GENERATION_DEFAULTS
from sepit.model.build import apply_lora, load_sepit, save_sepit
from sepit.model.moe import upcycle_sepit

LORA = {"r": 2, "target_modules": ["q_proj", "v_proj"],
        "target_parameters": ["experts.gate_up_proj", "experts.down_proj"]}


def _stage2_folder(folder):
    model, proc = tiny_sepit(seed=2)
    upcycle_sepit(model, num_experts=2, top_k=1)
    apply_lora(model, LORA)
    with torch.no_grad():  # non-trivial adapters and experts, so merging changes the weights
        for name, p in model.named_parameters():
            if "lora_" in name or "experts" in name:
                p.add_(torch.randn_like(p) * 0.1)
    save_sepit(folder, model, proc)
    return model


def _wrappers(model) -> int:
    return sum(isinstance(m, BaseTunerLayer) for m in model.modules())


def test_load_folds_lora_and_matches_the_unmerged_model(tmp_path):
    _stage2_folder(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["lora"]  # saved unmerged
    unmerged, proc = load_sepit(tmp_path, merge_lora=False)
    merged, _ = load_sepit(tmp_path)
    assert _wrappers(unmerged) > 0 and _wrappers(merged) == 0 and merged.config.lora is None
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, None])
    with torch.no_grad():
        a, b = unmerged.eval()(**batch).logits, merged.eval()(**batch).logits
    assert not torch.equal(a, b)  # different arithmetic, ...
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)  # ... same function
    prompt = proc(SEQS[:1], questions=QUESTIONS[:1])
    with torch.no_grad():
        greedy = [m.generate(**prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False)
                  for m in (unmerged, merged)]
    assert torch.equal(*greedy)


def test_load_adds_missing_generation_defaults_but_keeps_saved_ones(tmp_path):
    model = _stage2_folder(tmp_path)
    for key in GENERATION_DEFAULTS:
        assert getattr(model.generation_config, key) == GENERATION_DEFAULTS[key]
    path = tmp_path / "generation_config.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in stored.items() if k not in GENERATION_DEFAULTS}
                               | {"no_repeat_ngram_size": 7}))
    loaded, _ = load_sepit(tmp_path)
    assert loaded.generation_config.no_repeat_ngram_size == 7
    assert loaded.generation_config.repetition_penalty == GENERATION_DEFAULTS["repetition_penalty"]
