"""Under LoRA the new <protein_start> / <protein_end> embedding rows train (only they), through the optimizer
groups the training engine builds, and they survive save, load and LoRA merging."""

from __future__ import annotations

import torch

from sepit.model.build import apply_lora, load_sepit, save_sepit
from sepit.model.lora_merge import merge_sepit_lora
from sepit.train.optim import build_optimizer, param_groups
from tests.model.tiny_sepit import ANSWERS, QUESTIONS, SEQS, tiny_sepit

LORA = {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]}


def _lora_model():
    model, proc = tiny_sepit()
    apply_lora(model, LORA)
    return model, proc


def _step(model, proc, weight_decay: float) -> None:
    groups = param_groups(model, {"encoder": (model.encoder, 0.1), "llm": (model.language_model, 0.1)}, 1e-2,
                          weight_decay)
    opt = build_optimizer(groups)
    model.train()
    model(**proc(SEQS, questions=QUESTIONS, answers=ANSWERS)).loss.backward()
    opt.step()
    model.eval()


def test_only_the_new_token_rows_change(tmp_path):
    model, proc = _lora_model()
    new = [model.config.protein_start_token_id, model.config.protein_end_token_id]
    before_VE = model.get_input_embeddings().weight.detach().clone()
    _step(model, proc, weight_decay=0.1)  # decay must not touch the frozen rows either
    after_VE = model.get_input_embeddings().weight.detach()
    changed = (after_VE != before_VE).any(dim=1).nonzero().flatten().tolist()
    assert changed == sorted(new)
    assert model.language_model.lm_head.weight is model.get_input_embeddings().weight  # still tied

    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    with torch.no_grad():
        ref = model(**batch).logits
    save_sepit(tmp_path / "lora", model, proc)
    again, _ = load_sepit(tmp_path / "lora")
    assert torch.equal(again.get_input_embeddings().weight, after_VE)
    trainable = {n for n, p in again.named_parameters() if p.requires_grad}
    assert any("embed_tokens" in n for n in trainable) and all("lora_" in n or "embed_tokens" in n
                                                              for n in trainable if n.startswith("language_model"))
    merge_sepit_lora(again)
    assert torch.equal(again.get_input_embeddings().weight, after_VE)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(**batch).logits, ref, atol=1e-5, rtol=1e-5)


def test_reloaded_lora_model_keeps_training_only_those_rows(tmp_path):
    model, proc = _lora_model()
    save_sepit(tmp_path, model, proc)
    again, proc = load_sepit(tmp_path)
    before_VE = again.get_input_embeddings().weight.detach().clone()
    _step(again, proc, weight_decay=0.0)
    changed = (again.get_input_embeddings().weight != before_VE).any(dim=1).nonzero().flatten().tolist()
    assert changed == sorted([again.config.protein_start_token_id, again.config.protein_end_token_id])


def test_groups_put_the_rows_apart_without_decay():
    model, _ = _lora_model()
    groups = {g["name"]: g for g in param_groups(model, {"llm": (model.language_model, 0.1)}, 1e-3, 0.05)}
    embedding = model.get_input_embeddings().weight
    assert [id(p) for p in groups["new_token_rows"]["params"]] == [id(embedding)]
    assert groups["new_token_rows"]["weight_decay"] == 0.0 and groups["new_token_rows"]["lr"] == 1e-3
    assert all(id(p) != id(embedding) for p in groups["llm"]["params"])
