"""Protein-to-LLM bridge pieces (DESIGN 2.4): residue selection, optional stride pooling, projector.

Shape legend: B batch, Lp protein tokens (``<cls> residues <eos> <pad>...``), D encoder width (D_plm),
E LLM width (D_llm), N total number of LLM protein positions in the batch (sum over proteins).

Only real residues reach the LLM: CLS, EOS and padding are dropped (original bug #5 fed 1024 padded
vectors). Features come out flattened in batch-major order, the order ``masked_scatter`` fills the
``<protein>`` placeholders of ``input_ids`` [B, T].
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class SepitProjector(nn.Module):
    """Linear(D -> E) -> GELU -> Linear(E -> E) (DESIGN 2.4, as LLaVA's multimodal projector)."""

    def __init__(self, in_dim: int, out_dim: int, act: str = "gelu"):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.act = ACT2FN[act]
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, x_ND: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x_ND)))  # (N, E)


def residue_mask(protein_input_ids_BL: torch.Tensor, protein_attention_mask_BL: torch.Tensor | None,
                 special_ids: tuple[int, ...]) -> torch.Tensor:
    """[B, Lp] bool: True on real residues (not CLS/EOS/padding or any id in ``special_ids``)."""
    mask_BL = torch.ones_like(protein_input_ids_BL, dtype=torch.bool)
    if protein_attention_mask_BL is not None:
        mask_BL &= protein_attention_mask_BL.bool()
    for token_id in special_ids:
        mask_BL &= protein_input_ids_BL != token_id
    return mask_BL


def num_positions(num_residues: torch.Tensor | int, stride: int) -> torch.Tensor | int:
    """LLM positions for a protein of ``num_residues``: ceil(n / stride) (stride 1 = one per residue)."""
    return (num_residues + stride - 1) // stride


def pool_residues(hidden_BLD: torch.Tensor, mask_BL: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Residue features [B, Lp, D] -> [N, D], N = sum_b ceil(n_b / stride), windows mean-pooled.

    Window g of protein b averages its residues g*stride .. (g+1)*stride - 1 (the last one may be
    shorter). Stride 1 returns ``hidden_BLD[mask_BL]`` unchanged (the paper: one position per residue).
    """
    if stride < 1:
        raise ValueError(f"pooling stride must be >= 1, got {stride}")
    if stride == 1:
        return hidden_BLD[mask_BL]  # (N, D)
    counts_B = mask_BL.sum(dim=1)
    groups_B = num_positions(counts_B, stride)
    offsets_B = torch.cumsum(groups_B, dim=0) - groups_B  # first output row of each protein
    rank_BL = torch.cumsum(mask_BL.long(), dim=1) - 1  # residue index within its protein
    row_BL = offsets_B[:, None] + torch.div(rank_BL, stride, rounding_mode="floor")
    rows_R = row_BL[mask_BL]  # (R,) output row of each residue
    n_out = int(groups_B.sum())
    sums_ND = hidden_BLD.new_zeros(n_out, hidden_BLD.shape[-1]).index_add_(0, rows_R, hidden_BLD[mask_BL])
    sizes_N = hidden_BLD.new_zeros(n_out).index_add_(0, rows_R, hidden_BLD.new_ones(rows_R.shape[0]))
    return sums_ND / sizes_N[:, None]
