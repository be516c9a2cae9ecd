"""MoE upcycling (DESIGN 2.6): identical experts reproduce the dense model; aux loss is added (bug #4); top-1
routers learn from the language-model loss itself (straight-through gate), not only from the aux loss."""

import pytest
import torch
import torch.nn.functional as F
from tiny_sepit import ANSWERS, QUESTIONS, SEQS, random_coords, tiny_llm_config, tiny_sepit
from transformers import AutoModelForCausalLM, LlamaForCausalLM, MixtralForCausalLM
from transformers.models.mixtral.modeling_mixtral import MixtralTopKRouter

from sepit.errors import ConfigError
from sepit.model.build import apply_lora
from sepit.model.moe import (
    SepitMixtralForCausalLM,
    StraightThroughRouter,
    mixtral_config_from_dense,
    upcycle_llm,
    upcycle_sepit,
)


def _dense(seed=0, **overrides):
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_llm_config(vocab_size=100, **overrides)).eval()


def test_config_carries_llama_fields():
    dense = tiny_llm_config(vocab_size=100, rope_parameters={"rope_type": "default", "rope_theta": 1234.0})
    moe = mixtral_config_from_dense(dense, 4, 1, 0.01)
    assert (moe.num_local_experts, moe.num_experts_per_tok, moe.router_aux_loss_coef) == (4, 1, 0.01)
    assert moe.head_dim == 8 and moe.sliding_window is None and moe.tie_word_embeddings
    assert moe.rope_parameters["rope_theta"] == 1234.0 and moe.output_router_logits
    for bad in ({"attention_bias": True}, {"mlp_bias": True}):
        with pytest.raises(ConfigError, match="bias"):
            mixtral_config_from_dense(tiny_llm_config(**bad), 4, 1, 0.01)
    with pytest.raises(ConfigError, match="top_k"):
        mixtral_config_from_dense(dense, 2, 3, 0.01)


def test_experts_are_fused_copies_of_the_mlp():
    dense = _dense()
    moe = upcycle_llm(dense, num_experts=3)
    mlp, block = dense.model.layers[1].mlp, moe.model.layers[1].mlp
    inter = mlp.gate_proj.weight.shape[0]
    assert block.experts.gate_up_proj.shape == (3, 2 * inter, 32) and block.gate.weight.shape == (3, 32)
    for e in range(3):
        assert torch.equal(block.experts.gate_up_proj[e, :inter], mlp.gate_proj.weight)
        assert torch.equal(block.experts.gate_up_proj[e, inter:], mlp.up_proj.weight)
        assert torch.equal(block.experts.down_proj[e], mlp.down_proj.weight)
    assert moe.lm_head.weight is moe.model.embed_tokens.weight


@pytest.mark.parametrize("top_k", [1, 2])
def test_identical_experts_equal_dense_for_any_router(top_k):
    dense = _dense()
    moe = upcycle_llm(dense, num_experts=4, top_k=top_k).eval()
    ids = torch.randint(0, 100, (2, 12))
    with torch.no_grad():
        ref = dense(ids).logits
        for seed in range(2):
            torch.manual_seed(seed)
            for layer in moe.model.layers:
                layer.mlp.gate.weight.normal_(0, 1.0)
            torch.testing.assert_close(moe(ids).logits, ref, atol=1e-5, rtol=1e-5)


def test_full_sepit_dense_equals_upcycled():
    model, proc = tiny_sepit()
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, None])
    with torch.no_grad():
        ref = model(**batch).logits
        upcycle_sepit(model, num_experts=4, top_k=1, aux_coef=0.01)
        assert isinstance(model.language_model, MixtralForCausalLM) and model.config.is_moe
        assert model.config.text_config.num_local_experts == 4
        torch.testing.assert_close(model(**batch).logits, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="already"):
        upcycle_sepit(model)


def test_loss_is_lm_loss_plus_coef_times_aux():
    model, proc = tiny_sepit()
    upcycle_sepit(model, num_experts=4, top_k=1, aux_coef=0.05)
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    model.train()
    out = model(**batch)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    lm_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    assert out.aux_loss > 0
    torch.testing.assert_close(out.loss, lm_loss + 0.05 * out.aux_loss)


def _router_grad_norms(model, batch) -> list[float]:
    """Router gradient norms per layer from the LM loss only (no router logits, so no aux loss at all)."""
    model.zero_grad()
    model(**batch, output_router_logits=False).loss.backward()
    return [float(layer.mlp.gate.weight.grad.norm()) for layer in model.language_model.model.layers]


def test_top1_router_learns_from_the_task_loss_alone():
    """aux_coef 0: the loss is the LM loss only, and every router still gets a clear gradient. Mixtral's own
    router (renormalised top-1 weight p / p = 1) gets none: the reference that shows what changed."""
    model, proc = tiny_sepit()
    upcycle_sepit(model, num_experts=4, top_k=1, aux_coef=0.0)
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    model.train()
    assert all(isinstance(layer.mlp.gate, StraightThroughRouter) for layer in model.language_model.model.layers)
    ours = _router_grad_norms(model, batch)
    assert min(ours) > 1e-4, ours
    for layer in model.language_model.model.layers:  # the stock Mixtral router, same weights
        stock = MixtralTopKRouter(model.config.text_config)
        stock.weight = layer.mlp.gate.weight
        layer.mlp.gate = stock
    stock_norms = _router_grad_norms(model, batch)
    assert max(stock_norms) < 1e-6 < min(ours), (stock_norms, ours)


def test_straight_through_gradient_is_the_switch_gradient():
    """d loss / d router logit_j = g (1[j = e] - p_j), g = <d loss / d output, chosen expert's output>."""
    config = mixtral_config_from_dense(tiny_llm_config(vocab_size=100), 4, 1, 0.0)
    torch.manual_seed(0)
    router = StraightThroughRouter(config)
    torch.nn.init.normal_(router.weight, std=0.5)
    x_SH, expert_out_SH, upstream_SH = (torch.randn(6, 32) for _ in range(3))
    logits_SE, weight_S1, index_S1 = router(x_SH)
    assert torch.equal(weight_S1, torch.ones_like(weight_S1))  # forward value: exactly 1
    (upstream_SH * expert_out_SH * weight_S1).sum().backward()
    g_S = (upstream_SH * expert_out_SH).sum(-1)
    p_SE = torch.softmax(logits_SE.detach(), -1)
    dlogits_SE = g_S[:, None] * (F.one_hot(index_S1[:, 0], 4) - p_SE)
    torch.testing.assert_close(router.weight.grad, dlogits_SE.T @ x_SH)


def test_upcycled_model_reloads_with_its_router(tmp_path):
    model, proc = tiny_sepit()
    upcycle_sepit(model, num_experts=4, top_k=1)
    for layer in model.language_model.model.layers:
        layer.mlp.gate.weight.data.normal_(0, 1.0)
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(again.language_model) is SepitMixtralForCausalLM
    assert all(type(layer.mlp.gate) is StraightThroughRouter for layer in again.language_model.model.layers)
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, model(**batch).logits, atol=0, rtol=0)


def test_lora_on_fused_experts():
    model, proc = tiny_sepit()
    upcycle_sepit(model, num_experts=2)
    apply_lora(model, {"r": 2, "target_parameters": ["experts.gate_up_proj", "experts.down_proj"]})
    batch = proc(SEQS[:2], questions=QUESTIONS[:2], answers=ANSWERS[:2])
    model.train()
    model(**batch).loss.backward()
    lora = [(n, p) for n, p in model.language_model.named_parameters() if p.requires_grad and "lora_" in n]
    others = {n for n, p in model.language_model.named_parameters() if p.requires_grad and "lora_" not in n}
    assert lora and others == {"model.embed_tokens.weight"}  # the new-token rows (only they get a gradient)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in lora)
    with pytest.raises(ConfigError, match="LoRA"):
        upcycle_llm(model.language_model)


def test_upcycled_generate_equals_dense_generate():
    model, proc = tiny_sepit()
    batch = proc(SEQS, questions=QUESTIONS, padding_side="left")
    kw = dict(max_new_tokens=5, min_new_tokens=5, do_sample=False)
    with torch.no_grad():
        dense = model.generate(**batch, **kw)
        upcycle_sepit(model, num_experts=4, top_k=1)
        assert torch.equal(model.generate(**batch, **kw), dense)
        assert torch.equal(model.generate(**batch, use_cache=False, **kw), dense)
