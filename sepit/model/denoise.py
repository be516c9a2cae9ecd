"""Coordinate denoising head for stage 0 (DESIGN 2.2; Transformer-M / Graphormer-3D style), batch-first.

Shape legend: B batch, L tokens, H heads, E head dim (D = H * E), D hidden.

Given encoder states h [B, L, D] of the perturbed pass and noisy points x~ [B, L, 3]:
    p_hij   = softmax_j(q_hi . k_hj / sqrt(E) + bias_hij)           over keys j that have a point
    u_ij    = (x~_j - x~_i) / |x~_j - x~_i|                          (0 for i == j)
    o_hia   = sum_j p_hij u_ija v_hj                                  for each axis a
    eps^_ia = w . concat_h(o_hia)                                     (one Linear D -> 1, shared by axes)

The DESIGN names one Linear per axis (as in Transformer-M); a per-axis weight breaks rotation
equivariance (rotating x~ mixes the axes), so one weight without bias is shared by the three axes, which
makes eps^ rotate exactly with the input (tests/model/test_denoise.py). Nothing mixes batch entries
(original bug #2 transposed a batch-first tensor).
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_SCALE = 0.2


def add_coordinate_noise(coords_BL3: torch.Tensor, point_mask_BL: torch.Tensor, scale: float = NOISE_SCALE,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x~ = x + scale * eps on tokens with a point (others unchanged, eps 0 there). Returns (x~, eps)."""
    eps_BL3 = torch.randn(coords_BL3.shape, generator=generator, device=coords_BL3.device,
                          dtype=coords_BL3.dtype) * point_mask_BL[..., None]
    return coords_BL3 + scale * eps_BL3, eps_BL3


def denoise_loss(pred_BL3: torch.Tensor, eps_BL3: torch.Tensor, noised_BL: torch.Tensor) -> torch.Tensor:
    """MSE over noised residues only (DESIGN 2.2); 0 (with a graph) when none is noised."""
    n = noised_BL.sum()
    sq_BL = (pred_BL3 - eps_BL3).square().sum(-1) * noised_BL
    return sq_BL.sum() / (3 * n.clamp(min=1))


class DenoiseHead(nn.Module):
    """Predicts the noise eps [B, L, 3] per token from encoder states and noisy points (DESIGN 2.2)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, 1, bias=False)  # shared by the 3 axes: equivariance

    def forward(self, hidden_BLD: torch.Tensor, coords_BL3: torch.Tensor, point_mask_BL: torch.Tensor,
                attention_bias_BHLL: torch.Tensor | None = None) -> torch.Tensor:
        """hidden [B, L, D]; noisy coords [B, L, 3]; point_mask [B, L] (True: token has a point);
        attention_bias: optional additive bias broadcasting to [B, H, L, L] (e.g. the encoder's structure bias).
        Returns predicted eps [B, L, 3], 0 on tokens without a point."""
        point_mask_BL = point_mask_BL.bool()
        probs_BHLL = self._attention(hidden_BLD, point_mask_BL, attention_bias_BHLL)
        v_BHLE = self._heads(self.v_proj(hidden_BLD))
        unit_BLL3 = _unit_directions(coords_BL3, point_mask_BL).to(probs_BHLL.dtype)
        axes = []
        for a in range(3):
            o_BHLE = (probs_BHLL * unit_BLL3[:, None, :, :, a]) @ v_BHLE
            o_BLD = o_BHLE.transpose(1, 2).flatten(2)
            axes.append(self.out_proj(o_BLD).squeeze(-1))  # [B, L]
        return torch.stack(axes, dim=-1) * point_mask_BL[..., None]

    def _heads(self, x_BLD: torch.Tensor) -> torch.Tensor:
        B, L, D = x_BLD.shape
        return x_BLD.view(B, L, self.num_heads, D // self.num_heads).transpose(1, 2)  # [B, H, L, E]

    def _attention(self, hidden_BLD, point_mask_BL, bias_BHLL) -> torch.Tensor:
        """Attention probabilities [B, H, L, L] over keys with a point (rows without any key give 0)."""
        q_BHLE = self._heads(self.q_proj(hidden_BLD))
        k_BHLE = self._heads(self.k_proj(hidden_BLD))
        scores_BHLL = (q_BHLE @ k_BHLE.transpose(-1, -2)) * q_BHLE.shape[-1] ** -0.5
        if bias_BHLL is not None:
            scores_BHLL = scores_BHLL + bias_BHLL
        keys_B11L = point_mask_BL[:, None, None, :]
        scores_BHLL = scores_BHLL.masked_fill(~keys_B11L, torch.finfo(scores_BHLL.dtype).min)
        return torch.softmax(scores_BHLL, dim=-1) * keys_B11L


def _unit_directions(coords_BL3: torch.Tensor, point_mask_BL: torch.Tensor) -> torch.Tensor:
    """u_ij = (x_j - x_i) / |x_j - x_i| [B, L, L, 3]; 0 on the diagonal and where either has no point."""
    x_BL3 = torch.where(point_mask_BL[..., None], coords_BL3, torch.zeros_like(coords_BL3))
    diff_BLL3 = x_BL3[:, None, :, :] - x_BL3[:, :, None, :]
    norm_BLL1 = torch.linalg.vector_norm(diff_BLL3, dim=-1, keepdim=True)
    pair_BLL1 = (point_mask_BL[:, :, None] & point_mask_BL[:, None, :])[..., None]
    return torch.where(pair_BLL1 & (norm_BLL1 > 0), diff_BLL3 / norm_BLL1.clamp(min=1e-6), 0.0)
