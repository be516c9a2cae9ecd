"""The paper preset builds: every stage with the paper's settings, the hub weights replaced by small local
stand-ins of the same kinds (no network here), and the real sizes on the meta device."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, EsmModel, LlamaConfig, LlamaForCausalLM

from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.esm_tokenizer import esm_config
from sepit.model.moe import upcycle_llm
from sepit.resources import MINILM, SMOLLM2, resolve_model
from sepit.train.config import load_train_config
from sepit.train.stage0 import stage0_plan
from sepit.train.stages import stage1_plan, stage2_plan


def _standins(tmp_path):
    """A tiny pretrained-style ESM-2 folder and a tiny Llama folder with SmolLM2's tokenizer."""
    esm_dir, llm_dir = tmp_path / "esm2", tmp_path / "llama"
    torch.manual_seed(0)
    EsmModel(esm_config("tiny"), add_pooling_layer=False).save_pretrained(esm_dir)
    tok = AutoTokenizer.from_pretrained(resolve_model(SMOLLM2))
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(llm_dir)
    tok.save_pretrained(llm_dir)
    return esm_dir, llm_dir


def _lrs(plan) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in plan.groups}


def test_paper_preset_builds_every_stage_with_local_standins(tmp_path, tiny_dataset):
    esm_dir, llm_dir = _standins(tmp_path)
    cfg = load_train_config("paper", [f"output_dir={tmp_path / 'run'}", f"dataset={tiny_dataset}",
                                      f"encoder.pretrained={esm_dir}", f"llm.name={llm_dir}",
                                      f"stage0.text_encoder={resolve_model(MINILM)}"])
    plan0 = stage0_plan(cfg)
    assert _lrs(plan0) == pytest.approx({"encoder": 1e-6, "new_modules": 1e-5})
    pretrained = EsmModel.from_pretrained(esm_dir, add_pooling_layer=False).state_dict()
    got = plan0.model.encoder.esm.state_dict()
    assert all(torch.equal(got[k], v) for k, v in pretrained.items())  # ESM-2 weights really loaded
    plan0.save_final(cfg.model_dir(0))

    plan1 = stage1_plan(cfg)
    assert _lrs(plan1) == pytest.approx({"encoder": 1e-5, "llm": 1e-5, "new_modules": 1e-4})
    assert all(p.requires_grad for p in plan1.model.parameters())  # full fine-tuning, no LoRA
    assert plan1.collator.proteins.structure_dropout == pytest.approx(0.15)
    plan1.save_final(cfg.model_dir(1))

    plan2 = stage2_plan(cfg)
    model = plan2.model
    llm_config = model.language_model.config
    assert model.config.is_moe and llm_config.num_local_experts == 4 and llm_config.num_experts_per_tok == 1
    assert llm_config.router_aux_loss_coef == pytest.approx(0.01)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    batch = plan2.collator([plan2.rows[i] for i in range(2)])
    loss = model(**batch).loss
    assert math.isfinite(loss.item())


def test_paper_sizes_build_on_the_meta_device():
    """ESM-2 650M + TinyLlama-1.1B architectures, the LLM upcycled to 4 experts, without allocating weights."""
    tiny_llama = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                             num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)
    esm = esm_config("t33_650M")
    assert esm.num_hidden_layers == 33 and esm.hidden_size == 1280
    with torch.device("meta"):
        encoder = SepitEncoderModel(SepitEncoderConfig(esm_config=esm))
        dense = AutoModelForCausalLM.from_config(tiny_llama)
        dense_n = sum(p.numel() for p in dense.parameters())
        moe = upcycle_llm(dense, 4, 1, 0.01)
    assert 640e6 < sum(p.numel() for p in encoder.parameters()) < 680e6 and 1.0e9 < dense_n < 1.15e9
    assert moe.config.num_local_experts == 4 and moe.config.num_experts_per_tok == 1
    moe_n = sum(p.numel() for p in moe.parameters())
    assert moe_n - dense_n == 3 * 22 * 3 * 2048 * 5632 + 22 * 2048 * 4  # 3 more experts + 4-way routers
