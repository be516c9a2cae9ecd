"""Train only some rows of an embedding matrix (the new ``<protein_start>`` / ``<protein_end>`` tokens under LoRA).

LoRA freezes the LLM's embeddings, so rows added for new tokens would keep their initial values for ever. A
gradient hook keeps the gradient of the chosen rows and zeroes the others; the weight itself stays an ordinary
parameter, so saving, loading, tying (SmolLM2 ties input and output embeddings) and LoRA merging are unchanged.
The parameter is marked so the optimizer puts it in a group without weight decay (decoupled decay would move
every row).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ROWS_ATTR = "sepit_trainable_rows"


def _keep_rows(grad_VE: torch.Tensor, rows: tuple[int, ...]) -> torch.Tensor:
    index_R = torch.tensor(rows, device=grad_VE.device)
    out_VE = torch.zeros_like(grad_VE)
    out_VE[index_R] = grad_VE[index_R]
    return out_VE


def train_only_rows(weight: nn.Parameter, rows: Sequence[int]) -> None:
    """Make ``weight`` [V, E] trainable with a gradient on ``rows`` only (idempotent)."""
    rows = tuple(sorted({int(r) for r in rows}))
    if not rows or not all(0 <= r < weight.shape[0] for r in rows):
        raise ValueError(f"trainable rows {rows} are not rows of a {tuple(weight.shape)} embedding")
    if getattr(weight, ROWS_ATTR, None) == rows:
        return
    if getattr(weight, "_sepit_rows_hook", None) is not None:
        weight._sepit_rows_hook.remove()
    weight.requires_grad_(True)
    setattr(weight, ROWS_ATTR, rows)
    weight._sepit_rows_hook = weight.register_hook(lambda grad: _keep_rows(grad, rows))


def trainable_rows(param: nn.Parameter) -> tuple[int, ...] | None:
    """The rows ``train_only_rows`` left trainable, or None for an ordinary parameter."""
    return getattr(param, ROWS_ATTR, None)


def train_all_rows(weight: nn.Parameter) -> None:
    """Undo :func:`train_only_rows`: an ordinary parameter again (its ``requires_grad`` is left as it is)."""
    if getattr(weight, "_sepit_rows_hook", None) is not None:
        weight._sepit_rows_hook.remove()
        weight._sepit_rows_hook = None
    if hasattr(weight, ROWS_ATTR):
        delattr(weight, ROWS_ATTR)
