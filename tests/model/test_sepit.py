"""SepitForConditionalGeneration: splice, masking, batching, generation with KV cache, gradients, LoRA
(DESIGN 2.4, 2.5, 2.7)."""

import pytest
import torch
from tiny_sepit import (
    ANSWERS,
    QUESTIONS,
    SEQS,
    random_coords,
    smol_tokenizer,
    tiny_encoder_config,
    tiny_llm_config,
    tiny_sepit,
)

from sepit.model.build import apply_lora, build_sepit
from sepit.model.encoder import SepitEncoderModel


@pytest.fixture(scope="module")
def tiny():
    return tiny_sepit()


def _positions(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def test_forward_shapes_and_loss(tiny):
    model, proc = tiny
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, random_coords(7)])
    out = model(**batch)
    assert out.logits.shape == (*batch["input_ids"].shape, model.config.text_config.vocab_size)
    assert torch.isfinite(out.loss)


def test_features_are_penultimate_layer_of_real_residues(tiny):
    model, proc = tiny
    batch = proc(SEQS[:2], questions=QUESTIONS[:2])
    feats, counts = model.get_protein_features(batch["protein_input_ids"], batch["protein_attention_mask"])
    assert counts.tolist() == [10, 3] and feats.shape == (13, 32)
    hidden = model.encoder(batch["protein_input_ids"], batch["protein_attention_mask"],
                           output_hidden_states=True).hidden_states[-2]
    expected = model.projector(torch.cat([hidden[0, 1:11], hidden[1, 1:4]]))
    torch.testing.assert_close(feats, expected)


def test_splice_puts_features_at_placeholders(tiny):
    model, proc = tiny
    batch = proc(SEQS[:2], questions=QUESTIONS[:2])
    feats, counts = model.get_protein_features(batch["protein_input_ids"], batch["protein_attention_mask"])
    embeds = model.get_input_embeddings()(batch["input_ids"])
    spliced = model.splice_protein_features(batch["input_ids"], embeds, feats, counts)
    is_prot = batch["input_ids"] == model.config.protein_token_id
    torch.testing.assert_close(spliced[is_prot], feats)
    torch.testing.assert_close(spliced[~is_prot], embeds[~is_prot])


def test_placeholder_count_mismatch_raises(tiny):
    model, proc = tiny
    batch = dict(proc(SEQS[:2], questions=QUESTIONS[:2]))
    ids = batch["input_ids"].clone()
    first = int((ids[0] == model.config.protein_token_id).nonzero()[0])
    ids[0, first] = 42  # one placeholder fewer than residues
    with pytest.raises(ValueError, match="do not match protein features"):
        model(**{**batch, "input_ids": ids})
    with pytest.raises(ValueError, match="no protein_input_ids"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])


@pytest.mark.parametrize("side", ["right", "left"])
def test_batch_equals_each_protein_alone(tiny, side):
    model, proc = tiny
    coords = [random_coords(10, 1), None, random_coords(7, 2)]
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=coords, padding_side=side)
    with torch.no_grad():
        logits = model(**batch, position_ids=_positions(batch["attention_mask"])).logits
        for b in range(3):
            one = proc(SEQS[b], questions=QUESTIONS[b], answers=ANSWERS[b], coords=[coords[b]])
            alone = model(**one).logits[0]
            real = batch["attention_mask"][b].bool()
            torch.testing.assert_close(logits[b][real], alone, atol=1e-5, rtol=1e-5)


def test_structure_changes_the_output(tiny):
    model, proc = tiny
    with torch.no_grad():
        plain = model(**proc(SEQS[0], questions=QUESTIONS[0])).logits
        struct = model(**proc(SEQS[0], questions=QUESTIONS[0], coords=random_coords(10))).logits
    assert not torch.allclose(plain, struct)


def test_pooling_stride_uses_fewer_positions():
    model, proc = tiny_sepit(pool_stride=3)
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    assert model.config.protein_pool_stride == 3 == proc.pool_stride
    counts = (batch["input_ids"] == model.config.protein_token_id).sum(1).tolist()
    assert counts == [4, 1, 3]
    assert torch.isfinite(model(**batch).loss)


def _greedy_loop(model, batch, steps):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    protein = {k: batch[k] for k in ("protein_input_ids", "protein_attention_mask", "coords", "coord_mask", "plddt")}
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), **protein).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    return ids


def test_generate_with_cache_equals_without_and_manual_loop(tiny):
    model, proc = tiny
    batch = proc(SEQS, questions=QUESTIONS, coords=[random_coords(10), None, None], padding_side="left")
    kw = dict(max_new_tokens=6, do_sample=False, min_new_tokens=6, no_repeat_ngram_size=0)  # plain greedy
    with torch.no_grad():
        cached = model.generate(**batch, **kw)
        uncached = model.generate(**batch, use_cache=False, **kw)
        manual = _greedy_loop(model, batch, 6)
    assert cached.shape == (3, batch["input_ids"].shape[1] + 6)
    assert torch.equal(cached, uncached) and torch.equal(cached, manual)
    texts = proc.decode_continuation(cached, batch["input_ids"])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_gradients_reach_the_right_parameters():
    model, proc = tiny_sepit()
    model.train()
    batch = proc(SEQS, questions=QUESTIONS, answers=ANSWERS, coords=[random_coords(10), None, None])
    model(**batch).loss.backward()
    assert model.projector.linear_1.weight.grad.abs().sum() > 0
    assert model.language_model.model.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
    assert model.encoder.esm.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.structure.parameters())
    model.zero_grad(set_to_none=True)
    model.freeze_encoder()
    model(**batch).loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.projector.linear_2.weight.grad.abs().sum() > 0


def test_build_from_encoder_folder_keeps_weights(tmp_path):
    torch.manual_seed(1)
    enc = SepitEncoderModel(tiny_encoder_config())
    enc.save_pretrained(tmp_path / "stage0")
    model, proc = build_sepit(tmp_path / "stage0", tiny_llm_config(), smol_tokenizer(), freeze_encoder=True)
    for (name, a), b in zip(enc.state_dict().items(), model.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_lora_trains_only_adapters_projector_and_encoder():
    model, proc = tiny_sepit()
    apply_lora(model, {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    llm_trainable = {n for n in trainable if n.startswith("language_model.")}
    embeddings = "language_model.model.embed_tokens.weight"  # only the new-token rows get a gradient there
    assert llm_trainable and all("lora_" in n or n == embeddings for n in llm_trainable)
    assert "projector.linear_1.weight" in trainable
    batch = proc(SEQS[:2], questions=QUESTIONS[:2], answers=ANSWERS[:2])
    model.train()
    model(**batch).loss.backward()
    lora_a = [p for n, p in model.named_parameters() if "lora_A" in n]
    assert lora_a and all(p.grad is not None for p in lora_a)
    assert model.config.lora["r"] == 4
