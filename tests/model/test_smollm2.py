"""The real SmolLM2-135M-Instruct (offline GGUF -> HF folder) inside SEPIT with a tiny encoder."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_sepit import QUESTIONS, SEQS, random_coords, tiny_encoder_config

from sepit.model.build import build_sepit
from sepit.resources import resolve_model


@pytest.mark.slow
def test_smollm2_sepit_forward_and_generate():
    torch.manual_seed(0)
    model, proc = build_sepit(tiny_encoder_config(), "smollm2-135m-instruct", freeze_encoder=True)
    model.eval()
    llm = model.language_model
    assert llm.config.model_type == "llama" and llm.config.tie_word_embeddings
    assert llm.get_input_embeddings().num_embeddings == len(proc.tokenizer) == 49155
    assert llm.lm_head.weight.data_ptr() == llm.model.embed_tokens.weight.data_ptr()
    # the pretrained weights are kept (no re-initialisation by the composite model)
    saved = load_file(Path(resolve_model("smollm2-135m-instruct")) / "model.safetensors")
    current = llm.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(current[name][: tensor.shape[0]], tensor), name
    batch = proc(SEQS[:1], questions=QUESTIONS[:1], answers=["A kinase."], coords=[random_coords(10)])
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.projector.linear_1.weight.grad is not None
    assert all(p.grad is None for p in model.encoder.parameters())
    prompt = proc(SEQS[1], questions=QUESTIONS[1], padding_side="left")
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert prompt["input_ids"].shape[1] < generated.shape[1] <= prompt["input_ids"].shape[1] + 3
    assert len(proc.decode_continuation(generated, prompt["input_ids"])) == 1
