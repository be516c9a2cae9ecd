"""Typed retrieval settings of a training run (``retrieval:`` in a preset; ``--retrieval.enabled true``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sepit.errors import ConfigError


@dataclass
class RetrievalSpec:
    """Training with retrieval (stages 1 and 2): every item's prompt shows evidence from the training split's
    index (never the protein itself). So that training sees what held-out proteins will see, a share of items
    (``below_cap_share``) gets only neighbours below ``identity_cap`` (null: the split's identity, 0.3 for a random
    split) and a share (``no_context_share``) gets none ("none found"). With ``cite``, open and caption answers
    open with the citation of the hit whose annotation they rest on ("[UniProt:P69905] Involved in ...")."""

    enabled: bool = False
    """Show retrieved evidence in the prompts of stages 1 and 2."""
    index: str = ""
    """Index folder of the training split; empty = built once into <output_dir>/index."""
    method: Literal["auto", "mmseqs", "opal"] = "auto"
    """Homology search: MMseqs2, pyopal (exhaustive Smith-Waterman) or auto (by reference size)."""
    top_k: int = 3
    """Hits shown in a prompt: of the pool, those annotated in the question's category first (rank order)."""
    pool: int = 12
    """Hits searched per protein (precomputed for training; the below-cap and the shown ones are picked from
    these); saved beside the weights so that inference searches as many."""
    identity_cap: float | None = None
    """Identity below which the below-cap share's hits lie; null = the split's identity (0.3 for random)."""
    below_cap_share: float = 0.5
    """Share of items that see only hits below identity_cap (what held-out proteins see)."""
    no_context_share: float = 0.1
    """Share of items that see no hits ("none found")."""
    max_evalue: float = 1.0
    """Hits above this e-value are not shown."""
    annotation_chars: int = 160
    """Characters of each hit's annotation shown."""
    cite: bool = True
    """Open and caption answers open with the citation of the hit whose annotation they rest on (first, so that
    the model names its source before it draws on it, and a length cap never cuts the citation off)."""
    cite_min_overlap: float = 0.6
    """Content-word overlap of answer and hit annotation (overlap coefficient) that earns a citation."""
    vote_weight: float = 0.5
    """Closed-set answers: weight of the evidence's identity-weighted label vote mixed with the model's option
    probabilities (0 = the model alone; sepit.retrieval.vote); saved beside the weights, used at inference."""

    def __post_init__(self) -> None:
        shares = (self.below_cap_share, self.no_context_share)
        if any(not 0 <= s <= 1 for s in shares) or sum(shares) > 1:
            raise ConfigError(f"retrieval shares must be in [0, 1] and sum to at most 1, got {shares}")
        if self.top_k < 1 or self.pool < self.top_k:
            raise ConfigError(f"retrieval.top_k ({self.top_k}) must be >= 1 and <= retrieval.pool ({self.pool})")
        if not 0 <= self.vote_weight <= 1:
            raise ConfigError(f"retrieval.vote_weight must be in [0, 1], got {self.vote_weight}")
        if self.identity_cap is not None and not 0 < self.identity_cap <= 1:
            raise ConfigError(f"retrieval.identity_cap must be in (0, 1], got {self.identity_cap}")
