"""SepitEncoderModel (DESIGN 2.1): equals plain ESM-2 without structure, batch/padding independence,
gradients, pLDDT weighting, from_esm and save/load round trips."""

from __future__ import annotations

import pytest
import torch
from transformers import EsmModel

from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.esm_tokenizer import esm_config

LENGTHS = (9, 6)  # residues per protein


def make_batch(lengths=LENGTHS, seed: int = 0, pad_to: int | None = None):
    """<cls> residues <eos> <pad>...; every residue has a point except residue 3 of the second protein."""
    g = torch.Generator().manual_seed(seed)
    L = (pad_to or max(lengths)) + 2
    ids = torch.ones(len(lengths), L, dtype=torch.long)
    coords = torch.zeros(len(lengths), L, 3)
    coord_mask = torch.zeros(len(lengths), L, dtype=torch.bool)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n + 1] = 0, 2
        ids[b, 1:n + 1] = torch.randint(4, 24, (n,), generator=g)
        coords[b, 1:n + 1] = torch.cumsum(torch.randn(n, 3, generator=g) * 2.0, 0)
        coord_mask[b, 1:n + 1] = True
    if len(lengths) > 1:
        coord_mask[1, 4] = False
    return dict(input_ids=ids, attention_mask=(ids != 1).long(), coords=coords, coord_mask=coord_mask)


def tiny_encoder(attn: str = "eager", **kwargs) -> SepitEncoderModel:
    torch.manual_seed(0)
    config = SepitEncoderConfig(esm_config=esm_config("tiny", attn_implementation=attn), num_kernels=16,
                                bias_chunk_size=kwargs.pop("bias_chunk_size", 4), **kwargs)
    model = SepitEncoderModel(config).eval()
    assert model.esm.config._attn_implementation == attn
    return model


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_no_structure_equals_plain_esm_exactly(attn):
    model = tiny_encoder(attn)
    batch = make_batch()
    plain = model.esm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    no_coords = model(batch["input_ids"], batch["attention_mask"])
    no_points = model(**{**batch, "coord_mask": torch.zeros_like(batch["coord_mask"])})
    assert torch.equal(no_coords.last_hidden_state, plain.last_hidden_state)
    assert torch.equal(no_points.last_hidden_state, plain.last_hidden_state)


def test_structure_changes_output_and_eager_matches_sdpa():
    batch = make_batch()
    eager, sdpa = tiny_encoder("eager"), tiny_encoder("sdpa")
    out = eager(**batch).last_hidden_state
    plain = eager(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    assert not torch.allclose(out, plain, atol=1e-4)
    torch.testing.assert_close(sdpa(**batch).last_hidden_state, out, atol=1e-5, rtol=1e-5)


def test_default_is_memory_efficient_path_and_equals_naive():
    assert SepitEncoderConfig().bias_chunk_size is not None
    batch = make_batch()
    chunked, naive = tiny_encoder(bias_chunk_size=3), tiny_encoder(bias_chunk_size=None)
    torch.testing.assert_close(chunked(**batch).last_hidden_state, naive(**batch).last_hidden_state,
                               atol=1e-5, rtol=1e-5)


def test_hidden_states_and_attention_bias():
    model = tiny_encoder()
    batch = make_batch()
    out = model(**batch, output_hidden_states=True, return_attention_bias=True)
    B, L = batch["input_ids"].shape
    assert len(out.hidden_states) == model.num_layers + 1
    assert out.hidden_states[-2].shape == (B, L, 32)
    assert out.attention_bias.shape == (B, 4, L, L)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_batch_independence_and_padding_invariance(attn):
    model = tiny_encoder(attn)
    batch = make_batch()
    other = make_batch(seed=1)
    mixed = {k: torch.stack([batch[k][0], other[k][1]]) for k in batch}
    out_a = model(**batch).last_hidden_state[0]
    out_b = model(**mixed).last_hidden_state[0]
    torch.testing.assert_close(out_b, out_a, atol=1e-5, rtol=1e-5)
    padded = make_batch()
    n = LENGTHS[1] + 2
    alone = {k: v[1:2, :n] for k, v in padded.items()}
    out_alone = model(**alone).last_hidden_state[0]
    out_padded = model(**padded).last_hidden_state[1, :n]
    torch.testing.assert_close(out_padded, out_alone, atol=1e-5, rtol=1e-5)


def test_gradients_reach_structure_and_esm():
    model = tiny_encoder().train()
    model(**make_batch()).last_hidden_state.square().mean().backward()
    for name, p in model.named_parameters():
        if "contact_head" in name:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_plddt_weighting():
    batch = make_batch()
    plain = tiny_encoder()(**batch).last_hidden_state
    weighted = tiny_encoder(use_plddt=True)
    full = weighted(**batch, plddt=torch.full(batch["coord_mask"].shape, 100.0)).last_hidden_state
    unknown = weighted(**batch, plddt=torch.zeros(batch["coord_mask"].shape)).last_hidden_state
    low = weighted(**batch, plddt=torch.full(batch["coord_mask"].shape, 30.0)).last_hidden_state
    torch.testing.assert_close(full, plain)
    torch.testing.assert_close(unknown, plain)
    assert not torch.allclose(low, plain, atol=1e-5)


def test_from_esm_and_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    esm = EsmModel(esm_config("tiny"), add_pooling_layer=False).eval()
    esm.save_pretrained(tmp_path / "esm")
    model = SepitEncoderModel.from_esm(str(tmp_path / "esm"), num_kernels=16, bias_chunk_size=4).eval()
    batch = make_batch()
    expected = esm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    got = model(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    assert torch.equal(got, expected)
    assert model.config.num_kernels == 16 and model.structure.chunk_size == 4
    model.save_pretrained(tmp_path / "enc")
    again = SepitEncoderModel.from_pretrained(tmp_path / "enc").eval()
    torch.testing.assert_close(again(**batch).last_hidden_state, model(**batch).last_hidden_state,
                               atol=0, rtol=0)


def test_mismatched_coord_mask_raises():
    batch = make_batch()
    with pytest.raises(ValueError, match="coord_mask"):
        tiny_encoder()(**{**batch, "coord_mask": batch["coord_mask"][:, :-1]})
