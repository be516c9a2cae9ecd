"""Limits and batching settings of the server (one dataclass, filled from ``sepit serve`` options)."""

from __future__ import annotations

from dataclasses import dataclass

from sepit.errors import ConfigError


@dataclass
class ServeSettings:
    """``api_key``: when set, ``/v1/*`` needs ``Authorization: Bearer KEY``.
    ``max_batch_size``/``batch_wait_ms``: requests arriving within ``batch_wait_ms`` of the first one of a
    batch are answered together (up to ``max_batch_size``). ``request_timeout_s`` counts queueing too."""

    model_name: str = "sepit"
    api_key: str | None = None
    max_body_bytes: int = 8 * 2**20
    max_sequence_length: int = 1022
    max_structure_bytes: int = 5 * 2**20
    max_question_chars: int = 2000
    max_choices: int = 26
    max_new_tokens: int = 512
    default_max_new_tokens: int = 128
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    max_queue: int = 256
    request_timeout_s: float = 60.0

    def __post_init__(self):
        positive = ("max_body_bytes", "max_sequence_length", "max_structure_bytes", "max_question_chars",
                    "max_new_tokens", "default_max_new_tokens", "max_batch_size", "max_queue", "request_timeout_s")
        bad = [name for name in positive if getattr(self, name) <= 0]
        if bad or self.batch_wait_ms < 0 or self.max_choices < 2:
            raise ConfigError(f"serve settings must be positive: {bad or ['batch_wait_ms', 'max_choices']}")
        if self.default_max_new_tokens > self.max_new_tokens:
            raise ConfigError(f"default_max_new_tokens ({self.default_max_new_tokens}) exceeds "
                              f"max_new_tokens ({self.max_new_tokens})")
