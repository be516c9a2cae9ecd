"""Decoding defaults against degenerate loops, kept in every SEPIT model's generation config.

``no_repeat_ngram_size: 3`` (no token 3-gram twice in prompt + answer) and no repetition penalty, chosen by
``benchmarks/bench_decoding.py`` (benchmarks/RESULTS.md): on the 32 open-ended test items of the demo's evaluation,
answered by SmolLM2-135M-Instruct (the LLM SEPIT starts from; the demo's own stage-2 model was still training),
greedy decoding repeated a word 4-gram in 59% of the answers; the 3-gram guard brought that to 0% with the best
BLEU-2 and BERTScore of the six settings tried and the fewest answers running to the token limit. A repetition
penalty also penalises the end-of-turn token, which the chat template puts in the prompt: at 1.2 no answer ended
before the limit. ``build_sepit`` writes the defaults into new models, ``load_sepit`` adds them to folders saved
before they existed, and a training preset's ``generation:`` section (written at save) overrides them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import GenerationConfig

GENERATION_DEFAULTS = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 3}


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
