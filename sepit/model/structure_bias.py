"""Gaussian distance-kernel structure module (DESIGN 2.1; Graphormer-3D / Transformer-M style).

Shapes: B batch, L tokens (CLS + residues + EOS + padding), K kernels, H heads, D hidden.

- phi_k(d_ij) = exp(-0.5 ((d_ij - mu_k) / sigma_k)^2) / (sqrt(2 pi) sigma_k), learnable mu, sigma.
- attention bias: MLP K -> K -> H (GELU) of phi(d_ij): [B, H, L, L], 0 where either token has no point.
- structural embedding: scale * Linear(K -> D)(sum_j phi(d_ij)): [B, L, D], 0 where token i has no point.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianKernels(nn.Module):
    """K Gaussian basis functions of a distance in Angstrom, learnable means and stds."""

    def __init__(self, num_kernels: int = 128, max_distance: float = 32.0):
        super().__init__()
        self.means = nn.Parameter(torch.linspace(0.0, max_distance, num_kernels))
        self.stds = nn.Parameter(torch.full((num_kernels,), max_distance / num_kernels * 2.0))

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        """dist [...] -> phi [..., K]."""
        std = self.stds.abs() + 1e-2
        z = (dist.unsqueeze(-1) - self.means) / std
        return torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * std)


class StructureBias(nn.Module):
    """Distance kernels -> (attention bias [B, H, L, L], structural embedding [B, L, D])."""

    def __init__(self, num_heads: int, hidden_size: int, num_kernels: int = 128, embed_scale: float = 0.01):
        super().__init__()
        self.kernels = GaussianKernels(num_kernels)
        self.bias_mlp = nn.Sequential(
            nn.Linear(num_kernels, num_kernels), nn.GELU(), nn.Linear(num_kernels, num_heads)
        )
        self.embed_proj = nn.Linear(num_kernels, hidden_size)
        self.embed_scale = embed_scale

    def forward(self, coords_BL3: torch.Tensor, mask_BL: torch.Tensor, weight_BL: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Straightforward path: builds the full [B, L, L, K] tensor.

        coords_BL3: C-alpha per token (any value where mask is False); mask_BL: True where a point exists;
        weight_BL: optional per-residue confidence in [0, 1] (pLDDT / 100) scaling each pair's bias.
        """
        mask_BL = mask_BL.bool()
        x_BL3 = torch.where(mask_BL[..., None], coords_BL3, torch.zeros_like(coords_BL3)).float()
        pair_BLL = mask_BL[:, :, None] & mask_BL[:, None, :]
        dist_BLL = torch.cdist(x_BL3, x_BL3)
        phi_BLLK = self.kernels(dist_BLL) * pair_BLL[..., None]
        bias_BLLH = self.bias_mlp(phi_BLLK) * pair_BLL[..., None]
        if weight_BL is not None:
            bias_BLLH = bias_BLLH * (weight_BL[:, :, None] * weight_BL[:, None, :])[..., None]
        embed_BLD = self.embed_scale * self.embed_proj(phi_BLLK.sum(2)) * mask_BL[..., None]
        return bias_BLLH.permute(0, 3, 1, 2), embed_BLD
