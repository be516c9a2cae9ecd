"""Attention with a learned additive bias on CPU without per-layer probabilities (issue 13, item 5: P1 memory).

The structure-aware encoder passes one shared bias [B, H, L, L] (structure bias + padding) that requires grad as
ESM's 4-D attention mask. ``torch.nn.functional.scaled_dot_product_attention`` on CPU refuses its fused kernel
for such a mask and falls back to the math path, which keeps every layer's [B, H, L, L] probabilities for
backward. ``BiasAttentionFunction`` instead:

- forward: the fused CPU kernel (``aten._scaled_dot_product_flash_attention_for_cpu``) on the detached bias,
  keeping its log-sum-exp; saves q, k, v, lse and a reference to the bias (the one shared tensor);
- backward: recomputes P = exp(q k^T * scale + bias - lse) in row chunks (``CHUNK_ROWS`` rows, math in fp32) and
  from each chunk writes dq and adds to dk, dv and dBias = P * (dP - rowsum(dP * P)) (rowsum(dP * P) =
  rowsum(dO * O), taken from the fp32 chunk: as accurate as the math path in bf16, where O is rounded); dBias is
  reduced over the bias's broadcast dimensions, and autograd sums it across the layers that share the bias.
  (One recomputation for all four gradients: faster than the fused backward plus a second pass for dBias.)

Wiring: importing this module registers ``bias_sdpa_attention_forward`` as the ``"sdpa"`` entry of transformers'
``AttentionInterface`` (a global registry lookup done by ESM's attention on every call). It takes this path only
when the mask is a floating tensor requiring grad, grad mode is on, the tensors are on CPU, dropout is 0, no
attention weights, position bias or softcap are asked for and there is no grouped-query attention; every other
call goes to transformers' own ``sdpa_attention_forward`` unchanged (so plain ESM-2, frozen bias, inference and
all other models behave exactly as before). ``fused_bias_attention(False)`` forces the old path (benchmarks).
Why the "sdpa" entry rather than a new name: the encoder's configs keep ``attn_implementation="sdpa"`` (saved
configs, composite SepitConfig, training specs and tests read it), and the choice must be the same when activation
checkpointing recomputes a layer in backward; the mask's ``requires_grad`` is. On CUDA, sdpa's memory-efficient
kernel already returns the bias gradient without probabilities, so CUDA calls go to sdpa unchanged.

Shape legend: B batch, H heads, Q query tokens, K key tokens, C rows of one chunk, E head dim.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

CHUNK_ROWS = 128
_FUSED_FWD = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
_STATE = {"enabled": True}
_DTYPES = (torch.float32, torch.bfloat16, torch.float64)


@contextmanager
def fused_bias_attention(enabled: bool) -> Iterator[None]:
    """Turn the bias-gradient path on or off (off = transformers' sdpa, i.e. the math fallback) inside the block."""
    previous, _STATE["enabled"] = _STATE["enabled"], enabled
    try:
        yield
    finally:
        _STATE["enabled"] = previous


class BiasAttentionFunction(torch.autograd.Function):
    """softmax(q k^T * scale + bias) v with gradients for q, k, v and the bias; q, k, v [B, H, Q|K, E] -> [B, H, Q, E].

    bias: broadcastable to [B, H, Q, K] (e.g. [B, H, Q, K] or [B, 1, Q, K]); its gradient has its own shape.
    """

    @staticmethod
    def forward(ctx, q_BHQE, k_BHKE, v_BHKE, bias, scale: float | None, chunk_rows: int):
        out_BHQE, lse_BHQ = _FUSED_FWD(q_BHQE, k_BHKE, v_BHKE, 0.0, False, attn_mask=bias.detach(), scale=scale)
        ctx.save_for_backward(q_BHQE, k_BHKE, v_BHKE, bias, lse_BHQ)
        ctx.scale = scale if scale is not None else q_BHQE.shape[-1] ** -0.5
        ctx.chunk_rows = chunk_rows
        return out_BHQE

    @staticmethod
    def backward(ctx, dout_BHQE):
        q, k, v, bias, lse_BHQ = ctx.saved_tensors
        grads = bias_attention_backward(dout_BHQE, q, k, v, bias, lse_BHQ, ctx.scale, ctx.chunk_rows,
                                        need_bias=ctx.needs_input_grad[3])
        return (*grads, None, None)


def bias_attention_backward(dout_BHQE, q_BHQE, k_BHKE, v_BHKE, bias, lse_BHQ, scale: float,
                            chunk_rows: int, need_bias: bool = True):
    """(dq, dk, dv, dBias or None) by row chunks of the recomputed probabilities, math in fp32 (fp64 for fp64)."""
    f32 = torch.promote_types(q_BHQE.dtype, torch.float32)
    Q = q_BHQE.shape[-2]
    q, k, v, dout = (t.to(f32) for t in (q_BHQE, k_BHKE, v_BHKE, dout_BHQE))
    k_BHEK, v_BHEK = k.transpose(-1, -2), v.transpose(-1, -2)
    # A row whose keys are all -inf has lse -inf: +inf makes its P exp(-inf) = 0 instead of NaN.
    lse_BHQ = torch.where(torch.isneginf(lse_BHQ), torch.inf, lse_BHQ.to(f32))
    bias4 = bias.reshape((1,) * (4 - bias.dim()) + tuple(bias.shape))
    row_broadcast = bias4.shape[-2] == 1 and Q > 1
    dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
    dbias4 = torch.zeros(bias4.shape, dtype=f32) if need_bias else None
    for start in range(0, Q, chunk_rows):
        rows = slice(start, min(start + chunk_rows, Q))
        bias_rows = bias4 if row_broadcast else bias4[..., rows, :]
        p_BHCK = torch.matmul(q[:, :, rows], k_BHEK).mul_(scale).add_(bias_rows.to(f32))
        p_BHCK = p_BHCK.sub_(lse_BHQ[:, :, rows, None]).exp_()
        dp_BHCK = torch.matmul(dout[:, :, rows], v_BHEK)
        ds_BHCK = dp_BHCK.sub_((dp_BHCK * p_BHCK).sum(-1, keepdim=True)).mul_(p_BHCK)
        dv += torch.matmul(p_BHCK.transpose(-1, -2), dout[:, :, rows])
        del p_BHCK
        dq[:, :, rows] = torch.matmul(ds_BHCK, k).mul_(scale)
        dk += torch.matmul(ds_BHCK.transpose(-1, -2), q[:, :, rows]).mul_(scale)
        if need_bias:
            if row_broadcast:
                dbias4 += ds_BHCK.sum_to_size(bias4.shape)
            else:
                dbias4[..., rows, :] = ds_BHCK.sum_to_size(*bias4.shape[:2], ds_BHCK.shape[2], bias4.shape[3])
    dbias = dbias4.reshape(bias.shape).to(bias.dtype) if need_bias else None
    return dq.to(q_BHQE.dtype), dk.to(k_BHKE.dtype), dv.to(v_BHKE.dtype), dbias


def uses_bias_path(query: torch.Tensor, key: torch.Tensor, attention_mask: torch.Tensor | None,
                   dropout: float = 0.0, **kwargs) -> bool:
    """Whether ``bias_sdpa_attention_forward`` takes the bias-gradient path for these arguments."""
    return (_STATE["enabled"] and attention_mask is not None and attention_mask.requires_grad
            and attention_mask.is_floating_point() and torch.is_grad_enabled() and dropout == 0.0
            and query.device.type == "cpu" and query.dtype in _DTYPES and query.shape[1] == key.shape[1]
            and not kwargs.get("output_attentions", False) and kwargs.get("position_bias") is None
            and kwargs.get("softcap") is None)


def bias_sdpa_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                                value: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float = 0.0,
                                scaling: float | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' ``sdpa`` interface: (attn_output [B, Q, H, E], None); the bias-gradient path when
    ``uses_bias_path``, else ``sdpa_attention_forward`` unchanged."""
    causal = kwargs.get("is_causal") or getattr(module, "is_causal", False)
    if causal or not uses_bias_path(query, key, attention_mask, dropout, **kwargs):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    out_BHQE = BiasAttentionFunction.apply(query, key, value, attention_mask, scaling, CHUNK_ROWS)
    return out_BHQE.transpose(1, 2).contiguous(), None


AttentionInterface.register("sdpa", bias_sdpa_attention_forward)
