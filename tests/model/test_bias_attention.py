"""Bias-gradient attention (sepit/model/bias_attention.py, issue 13 item 5): equals the math path in values and
gradients (q, k, v and the bias, padding and broadcast masks, chunk sizes), runs the fused CPU kernel without
keeping [B, H, L, L] probabilities, and defers to transformers' sdpa whenever the mask needs no gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_encoder import make_batch as encoder_batch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from sepit.model import bias_attention
from sepit.model.bias_attention import BiasAttentionFunction, bias_sdpa_attention_forward, fused_bias_attention
from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.esm_tokenizer import esm_config


def make_batch():
    """Two proteins (9 and 6 residues): the second padded, its residue 3 without a point."""
    return encoder_batch((9, 6))


B, H, L, E = 2, 3, 11, 8
NEG = torch.finfo(torch.float32).min / 2
FUSED = "_scaled_dot_product_flash_attention_for_cpu"


class OpCounter(TorchDispatchMode):
    """Counts aten ops by name (below autograd: the ops that really run)."""

    def __init__(self):
        super().__init__()
        self.counts: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _qkv_bias(bias_bh: tuple[int, int] = (B, H), seed: int = 0, dtype=torch.float32):
    """q, k, v [B, H, L, E] as the transposed views ESM passes, and a bias [*bias_bh, L, L] whose last batch
    entry has its last 3 keys padded (large negative columns)."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, L, H, E, generator=g).transpose(1, 2).to(dtype) for _ in range(3))
    bias = torch.randn(*bias_bh, L, L, generator=g)
    bias[-1, :, :, L - 3:] = NEG
    return q, k, v, bias.to(dtype)


def _grads(fn, tensors, dout):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    out.backward(dout)
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("bias_bh", [(B, H), (B, 1), (1, H)])  # per head, broadcast over heads or batch
@pytest.mark.parametrize("chunk_rows", [4, 11, 3, 64])  # divides L or not, one chunk, more rows than L
def test_values_and_gradients_equal_math_path(bias_bh, chunk_rows):
    q, k, v, bias = _qkv_bias(bias_bh)
    dout = torch.randn(B, H, L, E, generator=torch.Generator().manual_seed(5))
    ours, ours_grads = _grads(lambda *t: BiasAttentionFunction.apply(*t, 0.5, chunk_rows), (q, k, v, bias), dout)
    ref, ref_grads = _grads(lambda q_, k_, v_, b_: F.scaled_dot_product_attention(q_, k_, v_, attn_mask=b_,
                                                                                  scale=0.5),
                            (q, k, v, bias), dout)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert ours_grads[3].shape == bias.shape
    for name, got, want in zip("q k v bias".split(), ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=f"d{name}")
    assert ours_grads[3][-1, :, :, L - 3:].abs().max() == 0  # padded keys get no probability, so no gradient
    assert ours_grads[3].abs().sum() > 0


def test_default_scale_row_broadcast_mask_and_bf16():
    q, k, v, bias = _qkv_bias()
    key_bias = bias[:, :1, :1, :].contiguous()  # [B, 1, 1, L]: broadcast over heads and query rows
    dout = torch.randn(B, H, L, E)
    ours, ours_grads = _grads(lambda *t: BiasAttentionFunction.apply(*t, None, 4), (q, k, v, key_bias), dout)
    ref, ref_grads = _grads(lambda q_, k_, v_, b_: F.scaled_dot_product_attention(q_, k_, v_, attn_mask=b_),
                            (q, k, v, key_bias), dout)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # bf16: computed in fp32 inside, as close to an fp64 reference as the bf16 math path is
    q, k, v, bias = _qkv_bias(dtype=torch.bfloat16)
    dout = dout.bfloat16()
    ours, ours_grads = _grads(lambda *t: BiasAttentionFunction.apply(*t, 0.5, 4), (q, k, v, bias), dout)
    math, math_grads = _grads(lambda q_, k_, v_, b_: F.scaled_dot_product_attention(q_, k_, v_, attn_mask=b_,
                                                                                    scale=0.5),
                              (q, k, v, bias), dout)
    ref, ref_grads = _grads(lambda q_, k_, v_, b_: torch.softmax(q_ @ k_.transpose(-1, -2) * 0.5 + b_, -1) @ v_,
                            [t.double() for t in (q, k, v, bias)], dout.double())
    assert ours.dtype == torch.bfloat16 and ours_grads[3].dtype == torch.bfloat16
    for got, math_, want in zip([ours, *ours_grads], [math, *math_grads], [ref, *ref_grads], strict=True):
        assert (got.double() - want).abs().max() <= 1.5 * (math_.double() - want).abs().max() + 1e-3


def _tiny(attn: str, seed: int = 0) -> SepitEncoderModel:
    torch.manual_seed(seed)
    config = SepitEncoderConfig(esm_config=esm_config("tiny", attn_implementation=attn), num_kernels=16,
                                bias_chunk_size=4)
    return SepitEncoderModel(config).eval()  # eval: no dropout, gradients still flow


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).last_hidden_state.square().mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("checkpointing", [False, True])
def test_encoder_loss_and_gradients_equal_eager(monkeypatch, checkpointing):
    monkeypatch.setattr(bias_attention, "CHUNK_ROWS", 5)  # several chunks, the last one partial (L = 11)
    batch = make_batch()  # two proteins, the second padded, one residue without a point
    eager, sdpa = _tiny("eager"), _tiny("sdpa")
    if checkpointing:
        sdpa.activation_checkpointing_enable()
        sdpa.train()
    calls = []
    original = BiasAttentionFunction.apply
    monkeypatch.setattr(BiasAttentionFunction, "apply", lambda *a: calls.append(1) or original(*a))
    loss_e, grads_e = _loss_and_grads(eager, batch)
    loss_s, grads_s = _loss_and_grads(sdpa, batch)
    assert len(calls) >= sdpa.num_layers  # the new path ran in every layer
    torch.testing.assert_close(loss_s, loss_e, atol=1e-6, rtol=1e-5)
    assert grads_s.keys() == grads_e.keys()
    assert any(n.startswith("structure.") for n in grads_s)
    for name in grads_e:
        torch.testing.assert_close(grads_s[name], grads_e[name], atol=1e-6, rtol=1e-4, msg=name)


def test_fused_kernel_runs_and_no_probabilities_are_kept():
    batch = make_batch()
    model = _tiny("sdpa")
    L_ = batch["input_ids"].shape[1]
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with OpCounter() as ops, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(**batch, return_attention_bias=True)
    bias = out.attention_bias
    assert bias.requires_grad and bias.shape == (2, 4, L_, L_)
    assert ops.counts.get(FUSED, 0) == model.num_layers
    assert "_softmax" not in ops.counts  # no math-path attention
    square = [t for t in saved if t.dim() == 4 and t.shape[-2:] == (L_, L_)]
    assert square and all(t.data_ptr() == bias.data_ptr() for t in square)  # only the one shared bias
    # the old path (forced) keeps one [B, H, L, L] probability tensor per layer
    saved.clear()
    with fused_bias_attention(False), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        bias = model(**batch, return_attention_bias=True).attention_bias
    assert sum(t.dim() == 4 and t.shape[-2:] == (L_, L_) and t.data_ptr() != bias.data_ptr()
               for t in saved) >= model.num_layers


def test_registered_as_sdpa_and_falls_back(monkeypatch):
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is bias_sdpa_attention_forward
    calls = []
    original = BiasAttentionFunction.apply
    monkeypatch.setattr(BiasAttentionFunction, "apply", lambda *a: calls.append(1) or original(*a))
    q, k, v, bias = _qkv_bias()
    module = torch.nn.Module()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2)
    grad_bias = bias.clone().requires_grad_()
    cases = [  # (mask, kwargs, takes the new path)
        (bias, {}, False),  # no gradient wanted for the mask
        (grad_bias, {"dropout": 0.1}, False),
        (grad_bias, {"output_attentions": True}, False),
        (grad_bias, {}, True),
    ]
    for mask, kwargs, new_path in cases:
        calls.clear()
        out, weights = bias_sdpa_attention_forward(module, q, k, v, mask, **kwargs)
        assert weights is None and out.shape == (B, L, H, E) and out.is_contiguous()
        assert bool(calls) == new_path, kwargs
        if "dropout" not in kwargs:
            torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    calls.clear()
    with torch.no_grad():
        bias_sdpa_attention_forward(module, q, k, v, grad_bias)
    with fused_bias_attention(False):
        bias_sdpa_attention_forward(module, q, k, v, grad_bias)
    assert not calls


def test_frozen_structure_and_inference_use_transformers_sdpa():
    batch = make_batch()
    model = _tiny("sdpa")
    model.structure.requires_grad_(False)
    with OpCounter() as ops:
        model(**batch)
    assert ops.counts.get(FUSED, 0) == model.num_layers  # sdpa's own fused dispatch (mask needs no grad)
    model.structure.requires_grad_(True)
    with torch.no_grad(), OpCounter() as ops:
        model(**batch)
    assert ops.counts.get(FUSED, 0) == model.num_layers
