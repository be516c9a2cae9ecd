"""Limits and batching settings of the server (one dataclass, filled from ``sepit serve`` options)."""

from __future__ import annotations

from dataclasses import dataclass

from sepit.errors import ConfigError


@dataclass
class ServeSettings:
    """``api_key``: when set, ``/v1/*`` needs ``Authorization: Bearer KEY``.
    ``max_batch_size``/``batch_wait_ms``: requests arriving within ``batch_wait_ms`` of the first one of a
    batch are answered together (up to ``max_batch_size``). ``request_timeout_s`` counts queueing too; a
    request that times out (or whose client leaves) has its model work stopped.

    Limits on what a request may cost (each refusal names its limit): body bytes; residues
    (``max_sequence_length``); structure bytes as uploaded and after gunzip (``max_structure_unzipped_bytes``,
    decompressed in chunks, never in full); question characters; options (``max_choices``, each at most
    ``max_choice_chars``); LLM tokens of the prompt with the longest option (``max_prompt_tokens``); generated
    tokens (``max_new_tokens``). ``max_scoring_tokens`` bounds the rows x tokens of one option-scoring forward
    (its logits are rows x tokens x vocabulary floats). ``max_residues``: proteins longer than this are cropped
    (default and upper bound: the model's own ``max_residues``); responses say so."""

    model_name: str = "sepit"
    api_key: str | None = None
    max_body_bytes: int = 8 * 2**20
    max_sequence_length: int = 1022
    max_structure_bytes: int = 5 * 2**20
    max_structure_unzipped_bytes: int = 32 * 2**20
    max_question_chars: int = 2000
    max_choices: int = 26
    max_choice_chars: int = 200
    max_prompt_tokens: int = 2048
    max_scoring_tokens: int = 2048
    max_residues: int | None = None
    max_new_tokens: int = 512
    default_max_new_tokens: int = 128
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    max_queue: int = 256
    request_timeout_s: float = 60.0

    def __post_init__(self):
        positive = ("max_body_bytes", "max_sequence_length", "max_structure_bytes", "max_structure_unzipped_bytes",
                    "max_question_chars", "max_choice_chars", "max_prompt_tokens", "max_scoring_tokens",
                    "max_new_tokens", "default_max_new_tokens", "max_batch_size", "max_queue", "request_timeout_s")
        bad = [name for name in positive if getattr(self, name) <= 0]
        bad += ["max_residues"] if self.max_residues is not None and self.max_residues < 1 else []
        if bad or self.batch_wait_ms < 0 or self.max_choices < 2:
            raise ConfigError(f"serve settings must be positive: {bad or ['batch_wait_ms', 'max_choices']}")
        if self.default_max_new_tokens > self.max_new_tokens:
            raise ConfigError(f"default_max_new_tokens ({self.default_max_new_tokens}) exceeds "
                              f"max_new_tokens ({self.max_new_tokens})")
