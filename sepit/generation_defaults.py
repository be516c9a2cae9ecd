"""Decoding defaults against degenerate loops, kept in every SEPIT model's generation config.

Chosen by measurement (``benchmarks/bench_decoding.py`` on the demo model's open-ended test items, results in
benchmarks/RESULTS.md): greedy decoding without them repeats phrases until the token limit ("... of the protein
family of the protein family of ..."). ``build_sepit`` writes them into new models, ``load_sepit`` adds them to
folders saved before they existed, and a training preset's ``generation:`` section overrides them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import GenerationConfig

GENERATION_DEFAULTS = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}


def apply_generation_defaults(config: GenerationConfig, values: dict | None = None,
                              saved: str | Path | None = None) -> GenerationConfig:
    """Set ``values`` (default :data:`GENERATION_DEFAULTS`) on ``config``; with ``saved`` (a model folder), only
    the keys its ``generation_config.json`` does not hold, so a saved choice always wins."""
    values = dict(GENERATION_DEFAULTS if values is None else values)
    if saved is not None:
        path = Path(saved) / "generation_config.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}
        values = {k: v for k, v in values.items() if k not in stored}
    for key, value in values.items():
        setattr(config, key, value)
    return config
