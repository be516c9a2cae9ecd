"""One-folder save/load of model + processor, offline, safetensors only; Auto classes (DESIGN 2.4-2.6)."""

import pytest
import torch
from tiny_sepit import ANSWERS, QUESTIONS, SEQS, random_coords, smol_tokenizer, tiny_llm_config, tiny_sepit
from transformers import AutoConfig, AutoModelForCausalLM, MixtralForCausalLM

import sepit.model.auto  # noqa: F401  (registration)
from sepit.model.build import apply_lora, build_sepit, load_sepit, save_sepit
from sepit.model.configuration import SepitConfig
from sepit.model.moe import upcycle_sepit
from sepit.model.sepit import SepitForConditionalGeneration


def _round_trip(model, proc, folder, **load):
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, None])
    save_sepit(folder, model, proc)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
            "protein_tokenizer"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    loaded, proc2 = load_sepit(folder, **load)
    loaded.eval()
    batch2 = proc2(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, None])
    assert all(torch.equal(batch[k], batch2[k]) for k in batch)
    with torch.no_grad():
        a, b = model.eval()(**batch), loaded(**batch2)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
    return loaded


def _tied(model):
    llm = model.language_model
    return llm.get_output_embeddings().weight.data_ptr() == llm.get_input_embeddings().weight.data_ptr()


def test_dense_round_trip_keeps_tying(tmp_path):
    model, proc = tiny_sepit(pool_stride=2)
    assert _tied(model)
    loaded = _round_trip(model, proc, tmp_path)
    assert _tied(loaded) and loaded.config.protein_pool_stride == 2
    assert loaded.config.protein_token_id == proc.token_ids["protein_token_id"]


def test_resize_keeps_tying_and_survives_reload(tmp_path):
    torch.manual_seed(0)
    from tiny_sepit import tiny_encoder_config

    model, proc = build_sepit(tiny_encoder_config(), tiny_llm_config(vocab_size=49152), smol_tokenizer())
    assert model.config.text_config.vocab_size == len(proc.tokenizer) == 49155
    assert _tied(model)
    loaded = _round_trip(model.eval(), proc, tmp_path)
    assert _tied(loaded)


def test_auto_classes_load_the_folder(tmp_path):
    model, proc = tiny_sepit()
    save_sepit(tmp_path, model, proc)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), SepitConfig)
    auto = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(auto, SepitForConditionalGeneration)


def test_moe_round_trip(tmp_path):
    model, proc = tiny_sepit()
    upcycle_sepit(model, num_experts=4, top_k=2, aux_coef=0.02)
    loaded = _round_trip(model, proc, tmp_path)
    assert isinstance(loaded.language_model, MixtralForCausalLM)
    assert loaded.config.text_config.num_experts_per_tok == 2 and _tied(loaded)


@pytest.mark.parametrize("moe", [False, True])
def test_lora_round_trip(tmp_path, moe):
    model, proc = tiny_sepit()
    if moe:
        upcycle_sepit(model, num_experts=2)
        lora = {"r": 2, "target_parameters": ["experts.gate_up_proj", "experts.down_proj"]}
    else:
        lora = {"r": 2, "target_modules": ["q_proj", "v_proj"]}
    apply_lora(model, lora)
    with torch.no_grad():  # make adapters non-trivial so the round trip is meaningful
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    loaded = _round_trip(model, proc, tmp_path, merge_lora=False)  # adapters kept (merged: test_load_merged)
    assert loaded.config.lora == model.config.lora
