"""Fold LoRA adapters into the base weights (e.g. a stage-1 LoRA model before MoE upcycling in stage 2)."""

from __future__ import annotations

from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer of ``model`` into its base layer and put the base layer back in its place.

    Returns the number of layers merged. Works on a bare module tree (adapters injected with
    ``peft.inject_adapter_in_model``); the model's forward is unchanged up to float rounding.
    """
    merged = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, BaseTunerLayer) or not name:
            continue
        module.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
        merged += 1
    return merged


def merge_sepit_lora(sepit_model) -> int:
    """Merge the LLM's LoRA adapters of a ``SepitForConditionalGeneration`` and clear ``config.lora``."""
    if not sepit_model.config.lora:
        return 0
    count = merge_lora(sepit_model.language_model)
    sepit_model.config.lora = None
    return count
