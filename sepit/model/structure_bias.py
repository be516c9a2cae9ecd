"""Gaussian distance-kernel structure module (DESIGN 2.1; Graphormer-3D / Transformer-M style).

Shape legend: B batch, L tokens (CLS + residues + EOS + padding), C rows of one chunk, K kernels,
H heads, D hidden.

- phi_k(d_ij) = exp(-0.5 ((d_ij - mu_k) / sigma_k)^2) / (sqrt(2 pi) sigma_k), learnable mu, sigma.
- attention bias: MLP K -> K -> H (GELU) of phi(d_ij): [B, H, L, L], 0 where either token has no point,
  optionally times w_i * w_j (per-residue confidence, e.g. pLDDT / 100).
- structural embedding: scale * Linear(K -> D)(sum_j phi(d_ij)): [B, L, D], 0 where token i has no point.

Two paths give the same values and gradients (tests/model/test_structure_bias.py):
- ``naive``: one [B, L, L, K] tensor (0.5 GiB per protein at L=1024, several copies kept for backward);
- chunked (default, ``chunk_size`` rows at a time): each row block is computed under activation
  checkpointing, so backward keeps only the [B, H, L, L] bias and the [B, L, K] kernel sums and recomputes
  one [B, C, L, K] block at a time.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

PHI_LOG_FLOOR = -40.0


class GaussianKernels(nn.Module):
    """K Gaussian basis functions of a distance in Angstrom, learnable means and stds (DESIGN 2.1)."""

    def __init__(self, num_kernels: int = 128, max_distance: float = 32.0):
        super().__init__()
        self.means = nn.Parameter(torch.linspace(0.0, max_distance, num_kernels))
        self.stds = nn.Parameter(torch.full((num_kernels,), max_distance / num_kernels * 2.0))

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        """dist [...] -> phi [..., K]."""
        std_K = self.stds.abs() + 1e-2
        z = (dist.unsqueeze(-1) - self.means) * std_K.reciprocal()
        log_phi = -0.5 * z * z - torch.log(math.sqrt(2 * math.pi) * std_K)
        # Floor at exactly 0 below exp(-40) (~4e-18): on CPU, exp of arguments below about -87 takes a slow
        # scalar path (9x), and tiny or subnormal phi make every later matmul subnormal-slow (8x). Values
        # change by at most 4e-18 and gradients of floored entries (~1e-16) become 0.
        return torch.exp(log_phi.clamp(min=PHI_LOG_FLOOR)) - math.exp(PHI_LOG_FLOOR)


class StructureBias(nn.Module):
    """Distance kernels -> (attention bias [B, H, L, L], structural embedding [B, L, D]) (DESIGN 2.1).

    ``chunk_size``: rows per block of the memory-efficient path (default); ``None`` = straightforward path.
    """

    def __init__(self, num_heads: int, hidden_size: int, num_kernels: int = 128, embed_scale: float = 0.01,
                 chunk_size: int | None = 64):
        super().__init__()
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of rows or None, got {chunk_size}")
        self.kernels = GaussianKernels(num_kernels)
        self.bias_mlp = nn.Sequential(
            nn.Linear(num_kernels, num_kernels), nn.GELU(), nn.Linear(num_kernels, num_heads)
        )
        self.embed_proj = nn.Linear(num_kernels, hidden_size)
        self.embed_scale = embed_scale
        self.chunk_size = chunk_size
        self.num_heads = num_heads

    def forward(self, coords_BL3: torch.Tensor, mask_BL: torch.Tensor, weight_BL: torch.Tensor | None = None,
                key_bias_BL: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Bias [B, H, L, L] and structural embedding [B, L, D].

        coords_BL3: C-alpha per token (any value where mask is False); mask_BL: True where a point exists;
        weight_BL: optional per-residue confidence in [0, 1] scaling each pair's bias by w_i * w_j;
        key_bias_BL: optional additive term per key (e.g. large negative for padding) folded into the
        returned bias, so that the encoder keeps a single [B, H, L, L] tensor.
        """
        x_BL3, mask_BL = self._clean(coords_BL3, mask_BL)
        if self.chunk_size is None or self.chunk_size >= x_BL3.shape[1]:
            bias_BHLL, phisum_BLK = self._rows(x_BL3, mask_BL, weight_BL, key_bias_BL, 0, x_BL3.shape[1])
        else:
            bias_BHLL, phisum_BLK = self._chunked(x_BL3, mask_BL, weight_BL, key_bias_BL)
        return bias_BHLL, self._embed(phisum_BLK, mask_BL)

    def naive(self, coords_BL3: torch.Tensor, mask_BL: torch.Tensor, weight_BL: torch.Tensor | None = None,
              key_bias_BL: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Straightforward path (reference): the whole [B, L, L, K] tensor at once."""
        x_BL3, mask_BL = self._clean(coords_BL3, mask_BL)
        bias_BHLL, phisum_BLK = self._rows(x_BL3, mask_BL, weight_BL, key_bias_BL, 0, x_BL3.shape[1])
        return bias_BHLL, self._embed(phisum_BLK, mask_BL)

    @staticmethod
    def _clean(coords_BL3: torch.Tensor, mask_BL: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero the coordinates of tokens without a point (they may be NaN) and make the mask boolean."""
        if coords_BL3.shape[:2] != mask_BL.shape or coords_BL3.shape[-1] != 3:
            raise ValueError(f"coords must be [B, L, 3] and coord_mask [B, L]; got {tuple(coords_BL3.shape)} "
                             f"and {tuple(mask_BL.shape)}")
        mask_BL = mask_BL.bool()
        x_BL3 = torch.where(mask_BL[..., None], coords_BL3, torch.zeros_like(coords_BL3))
        return x_BL3.to(torch.float32), mask_BL

    def _chunked(self, x_BL3, mask_BL, weight_BL, key_bias_BL) -> tuple[torch.Tensor, torch.Tensor]:
        """Row blocks written into one preallocated [B, H, L, L] tensor; checkpointed when grads are needed."""
        B, L, _ = x_BL3.shape
        bias_BHLL = x_BL3.new_empty(B, self.num_heads, L, L)
        sums = []
        use_ckpt = torch.is_grad_enabled()
        for start in range(0, L, self.chunk_size):
            end = min(start + self.chunk_size, L)
            args = (x_BL3, mask_BL, weight_BL, key_bias_BL, start, end)
            rows_BHCL, phisum_BCK = (checkpoint(self._rows, *args, use_reentrant=False) if use_ckpt
                                     else self._rows(*args))
            bias_BHLL[:, :, start:end] = rows_BHCL
            sums.append(phisum_BCK)
        return bias_BHLL, torch.cat(sums, dim=1)

    def _rows(self, x_BL3: torch.Tensor, mask_BL: torch.Tensor, weight_BL: torch.Tensor | None,
              key_bias_BL: torch.Tensor | None, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows start:end of the bias, [B, H, C, L], and of sum_j phi(d_ij), [B, C, K]."""
        diff_BCL3 = x_BL3[:, start:end, None, :] - x_BL3[:, None, :, :]
        dist_BCL = torch.linalg.vector_norm(diff_BCL3, dim=-1)
        pair_BCL1 = (mask_BL[:, start:end, None] & mask_BL[:, None, :])[..., None]
        phi_BCLK = self.kernels(dist_BCL) * pair_BCL1
        bias_BCLH = self.bias_mlp(phi_BCLK) * pair_BCL1
        if weight_BL is not None:
            w_BCL = weight_BL[:, start:end, None] * weight_BL[:, None, :]
            bias_BCLH = bias_BCLH * w_BCL[..., None].to(bias_BCLH.dtype)
        bias_BHCL = bias_BCLH.permute(0, 3, 1, 2)
        if key_bias_BL is not None:
            bias_BHCL = bias_BHCL + key_bias_BL[:, None, None, :].to(bias_BHCL.dtype)
        return bias_BHCL, phi_BCLK.sum(2)

    def _embed(self, phisum_BLK: torch.Tensor, mask_BL: torch.Tensor) -> torch.Tensor:
        """Structural embedding [B, L, D]: scale * Linear(sum_j phi), zero where token i has no point."""
        return self.embed_scale * self.embed_proj(phisum_BLK) * mask_BL[..., None]
