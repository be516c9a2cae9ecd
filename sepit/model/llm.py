"""Load the causal LLM of SEPIT (DESIGN 2.4) from a config, a model, a local folder, a hub id or an offline
name (``smollm2-135m-instruct``, see ``sepit.resources``), always through the Auto classes.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel

from sepit.errors import ConfigError
from sepit.resources import resolve_model

LlmSpec = str | Path | PretrainedConfig | PreTrainedModel


def load_llm(llm: LlmSpec, dtype=None) -> PreTrainedModel:
    """A causal LM: built from a config (random weights), returned as is, or loaded from name/path."""
    if isinstance(llm, PreTrainedModel):
        return llm
    if isinstance(llm, PretrainedConfig):
        return AutoModelForCausalLM.from_config(llm, dtype=dtype) if dtype else AutoModelForCausalLM.from_config(llm)
    path = resolve_model(str(llm))
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "float32")
    except OSError as err:
        raise ConfigError(f"cannot load the LLM {llm!r} (resolved to {path!r}): {err}") from None


def load_llm_tokenizer(llm: LlmSpec, tokenizer=None):
    """The LLM's tokenizer: ``tokenizer`` if given (object or name/path), else loaded from the LLM's path."""
    if tokenizer is not None and not isinstance(tokenizer, str | Path):
        return tokenizer
    source = tokenizer if tokenizer is not None else llm
    if isinstance(source, PreTrainedModel):
        source = source.config.name_or_path or None
    if not isinstance(source, str | Path) or not source:
        raise ConfigError("an LLM given as a config or model needs its tokenizer: pass tokenizer=...")
    path = resolve_model(str(source))
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as err:
        raise ConfigError(f"cannot load the tokenizer {source!r} (resolved to {path!r}): {err}") from None
    if not getattr(tok, "chat_template", None):
        raise ConfigError(f"the tokenizer of {source!r} has no chat template (DESIGN 2.4 needs one)")
    return tok
