"""Fold LoRA adapters into the base weights (e.g. a stage-1 LoRA model before MoE upcycling in stage 2)."""

from __future__ import annotations

from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer of ``model`` into its base layer and put the base layer back in its place.

    Returns the number of wrappers merged. Works on a bare module tree (adapters injected with
    ``peft.inject_adapter_in_model``); the model's forward is unchanged up to float rounding. LoRA on several
    parameters of one module (``target_parameters`` on the fused MoE experts) nests one wrapper per parameter:
    all are merged, and the outermost is replaced by the plain module.
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, BaseTunerLayer) and name]
    for _, module in layers:
        module.merge()  # each wrapper adds its own delta (nested wrappers: one per targeted parameter)
    names = {name for name, _ in layers}
    for name, module in layers:
        if any(name.startswith(outer + ".") for outer in names):
            continue  # nested inside another wrapper: replaced with it
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    return len(layers)


def merge_sepit_lora(sepit_model) -> int:
    """Merge the LLM's LoRA adapters of a ``SepitForConditionalGeneration`` and clear ``config.lora``."""
    if not sepit_model.config.lora:
        return 0
    count = merge_lora(sepit_model.language_model)
    sepit_model.config.lora = None
    return count
