"""Per-module learning rates (DESIGN 2.3/2.5), applied by object identity, not by parameter-name matching
(the original code's names never matched, so its ratios were silently not applied: DESIGN 5, bug 3)."""

from __future__ import annotations

import torch
from torch import nn

from sepit.errors import ConfigError
from sepit.model.token_rows import trainable_rows


def param_groups(model: nn.Module, scaled: dict[str, tuple[nn.Module | None, float]], base_lr: float,
                 weight_decay: float = 0.0) -> list[dict]:
    """Optimizer groups: each named module in ``scaled`` gets ``base_lr * scale``; every other trainable
    parameter of ``model`` (new modules: structure, projector, heads) gets ``base_lr``.

    Frozen parameters (requires_grad False) are left out. Each group carries its ``name`` for inspection.
    Embeddings of which only some rows train (new tokens under LoRA) form a ``new_token_rows`` group at
    ``base_lr`` without weight decay.
    """
    rows = [p for p in model.parameters() if p.requires_grad and trainable_rows(p) is not None]
    taken: set[int] = {id(p) for p in rows}
    groups: list[dict] = []
    for name, (module, scale) in scaled.items():
        if module is None:
            continue
        if scale < 0:
            raise ConfigError(f"learning-rate scale for {name} must be >= 0, got {scale}")
        params = [p for p in module.parameters() if p.requires_grad and id(p) not in taken]
        taken.update(id(p) for p in params)
        if params:
            groups.append({"name": name, "params": params, "lr": base_lr * scale, "weight_decay": weight_decay})
    if rows:  # new-token rows of a frozen embedding: new-module rate, and no decay (it would move every row)
        groups.append({"name": "new_token_rows", "params": rows, "lr": base_lr, "weight_decay": 0.0})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    if rest:
        groups.append({"name": "new_modules", "params": rest, "lr": base_lr, "weight_decay": weight_decay})
    if not groups:
        raise ConfigError("no trainable parameters: everything is frozen")
    return groups


def build_optimizer(groups: list[dict]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
