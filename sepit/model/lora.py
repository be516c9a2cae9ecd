"""LoRA on the SEPIT LLM (DESIGN 2.5 option), through PEFT: the config as stored in ``SepitConfig.lora`` and the
in-place injection. Imported by both ``sepit.model.sepit`` (to rebuild a saved LoRA model) and
``sepit.model.build`` (to add LoRA to a built one), so neither needs the other."""

from __future__ import annotations

import dataclasses
import enum

from peft import LoraConfig, inject_adapter_in_model
from transformers import PreTrainedModel


def lora_to_dict(lora: LoraConfig | dict) -> dict:
    """JSON-safe LoraConfig kwargs (non-default fields only), stored in ``SepitConfig.lora``."""
    if isinstance(lora, dict):
        lora = LoraConfig(**lora)
    defaults = LoraConfig()
    out = {}
    for field in dataclasses.fields(LoraConfig):
        value = getattr(lora, field.name)
        if field.name in ("peft_type", "peft_version", "task_type") or value == getattr(defaults, field.name):
            continue
        if isinstance(value, set):
            value = sorted(value)
        out[field.name] = value.value if isinstance(value, enum.Enum) else value
    return out


def freeze_all_but_lora(language_model: PreTrainedModel) -> None:
    """Only the LoRA adapters stay trainable."""
    for name, param in language_model.named_parameters():
        param.requires_grad_("lora_" in name)


def inject_lora(language_model: PreTrainedModel, lora: dict) -> None:
    """Add LoRA adapters in place (the LLM keeps its class and forward); only adapters stay trainable."""
    inject_adapter_in_model(LoraConfig(**lora), language_model)
    freeze_all_but_lora(language_model)
