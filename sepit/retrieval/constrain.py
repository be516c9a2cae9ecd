"""Logits processors for answers with evidence: citations that can only name the evidence, and a loop guard
that looks at the answer only.

:class:`CitationConstraint`: once a row's continuation opens a citation (a token with ``[`` followed by a token
starting with ``U``/``u``, the start of ``[UniProt:``), the next tokens must follow the tokenizer's own
tokenisation of ``[UniProt:ACC]`` for an accession ``ACC`` shown to the model (the tokens the model was trained
on: a character-level constraint lets it spell an accession in pieces it never saw, and it derails). The model
still decides whether to cite and which shown entry. A ``[`` followed by anything else (``[2Fe-2S]``) is left
alone. Rows without evidence (``None``) are not constrained; rows whose search found nothing (``[]``) cannot
open a citation.

:class:`AnswerNoRepeatNGram`: transformers' ``no_repeat_ngram_size`` bans every n-gram of prompt *and* answer,
so with evidence in the prompt an answer could never copy three tokens of a hit's annotation (nor write
``[UniProt:``, which the prompt holds). This guard bans n-grams repeated within the answer only.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from sepit.prompts import cite

BLOCKED_BUT_REQUIRED = -1e4  # a required citation token that another processor banned stays possible


@lru_cache(maxsize=4)
def _pieces(tokenizer) -> tuple[str, ...]:
    """The text of every token id ("" for special tokens)."""
    special = set(tokenizer.all_special_ids)
    return tuple("" if i in special or t is None else tokenizer.convert_tokens_to_string([t])
                 for i, t in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))))


class CitationConstraint:
    """``LogitsProcessor``: ``allowed[b]`` = accessions row ``b`` may cite (None: unconstrained)."""

    def __init__(self, tokenizer, allowed: list[list[str] | None], prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length
        self.targets = [None if a is None else [cite(x) for x in a] for a in allowed]
        self.pieces = _pieces(tokenizer)
        self._canon: dict[tuple[str, str], tuple[int, ...]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for b, targets in enumerate(self.targets):
            if targets is None:
                continue
            keep, ids = self._rule(input_ids[b, self.prompt_length:].tolist(), targets)
            if keep is None or not ids:
                continue
            if keep:
                row = torch.full_like(scores[b], float("-inf"))
                picked = scores[b, ids]
                row[ids] = torch.where(torch.isfinite(picked), picked, BLOCKED_BUT_REQUIRED)
            else:
                row = scores[b].clone()
                row[ids] = float("-inf")
            scores[b] = row
        return scores

    def _rule(self, generated: list[int], targets: list[str]) -> tuple[bool | None, list[int]]:
        """(True, ids): only ``ids`` may come next; (False, ids): ``ids`` may not; (None, []): free."""
        start = self._open_at(generated)
        if start is None:
            return None, []
        piece = self.pieces[generated[start]]
        lead = piece[: piece.rindex("[")]  # text before the bracket in its token (" [" -> " ")
        done = generated[start:]
        nexts = {canon[len(done)] for t in targets for canon in [self._canonical(lead, t)]
                 if len(canon) > len(done) and tuple(done) == canon[:len(done)]}
        if len(done) == 1:  # only "[" so far: a U/u token opens a citation and must be the right one
            return False, [i for i, p in enumerate(self.pieces) if p[:1] in ("U", "u") and i not in nexts]
        if self.pieces[done[1]][:1] not in ("U", "u"):
            return None, []  # not a citation ("[2Fe-2S]")
        return (True, sorted(nexts)) if nexts else (None, [])

    def _open_at(self, generated: list[int]) -> int | None:
        """Index of the token holding the last ``[`` of the answer if no ``]`` follows it, else None."""
        for k in range(len(generated) - 1, -1, -1):
            piece = self.pieces[generated[k]]
            if "]" in piece and ("[" not in piece or piece.rindex("]") > piece.rindex("[")):
                return None
            if "[" in piece:
                return k
        return None

    def _canonical(self, lead: str, target: str) -> tuple[int, ...]:
        key = (lead, target)
        if key not in self._canon:
            self._canon[key] = tuple(self.tokenizer(lead + target, add_special_tokens=False)["input_ids"])
        return self._canon[key]


class AnswerNoRepeatNGram:
    """``LogitsProcessor``: no n-gram twice within the answer (tokens after ``prompt_length``)."""

    def __init__(self, n: int, prompt_length: int):
        self.n, self.prompt_length = n, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        n = self.n
        for b in range(input_ids.shape[0]):
            toks = input_ids[b, self.prompt_length:].tolist()
            if len(toks) < n - 1 or n < 1:
                continue
            prefix = tuple(toks[len(toks) - (n - 1):]) if n > 1 else ()
            banned = [toks[i + n - 1] for i in range(len(toks) - n + 1) if tuple(toks[i:i + n - 1]) == prefix]
            if banned:
                scores[b, banned] = float("-inf")
        return scores
