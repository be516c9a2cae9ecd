"""Collators: rows of training items -> padded model inputs (dynamic padding per batch)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets

from sepit.data.store import DatasetStore
from sepit.prompts import format_question
from sepit.train.data import ProteinCropper


class InstructionCollator:
    """Stage 1/2 rows (accession, question, answer, choices) -> ``SepitProcessor`` batch with labels.

    Proteins are cropped to ``max_residues`` (window ``crop_window``, counted in ``crop_counter``); each loses
    its structure with probability ``structure_dropout``; answers are cut to ``max_answer_tokens`` LLM tokens.
    ``augment`` (training with retrieval, :class:`sepit.retrieval.training.TrainingContext`): row -> (evidence
    context of the prompt, citation that opens the answer or "").

    Rows that carry ``input_ids``/``labels`` (:meth:`pretokenize`) skip the chat template and the tokenizer; other
    rows are tokenised on the way (:meth:`item_tokens`); either way only the protein placeholder is expanded per
    batch.
    """

    def __init__(self, store: DatasetStore, processor, max_residues: int, structure_dropout: float = 0.0,
                 max_answer_tokens: int = 256, crop_window: str = "start", augment=None):
        self.processor, self.augment = processor, augment
        self.proteins = ProteinCropper(store, max_residues, structure_dropout, crop_window)
        self.crop_counter = self.proteins.counter
        self.max_answer_tokens = max_answer_tokens

    def _answer(self, text: str) -> str:
        tok = self.processor.tokenizer
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= self.max_answer_tokens else tok.decode(ids[: self.max_answer_tokens])

    def item_tokens(self, row: dict) -> dict:
        """One row's ``input_ids``/``labels`` with the protein as one placeholder (evidence context included)."""
        context, cited = self.augment(row) if self.augment else (None, "")
        question = format_question(row["question"], row.get("choices"), context)
        answer = self._answer(row["answer"])
        ids, labels = self.processor.tokenize_unexpanded(question, f"{cited} {answer}" if cited else answer)
        return {"input_ids": ids, "labels": labels}

    def pretokenize(self, rows: datasets.Dataset, cache_dir: Path | None = None) -> datasets.Dataset:
        """``rows`` with ``input_ids``/``labels`` columns, computed once (not per epoch) and, with ``cache_dir``,
        kept in an Arrow file there (memory-mapped; reused by a resumed or repeated run with the same rows,
        tokenizer, template, answer cap and retrieval settings)."""
        if cache_dir is None:
            return rows.map(self.item_tokens, desc="tokenising", keep_in_memory=True)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        name = f"tokens-{self._cache_key(rows)}.arrow"
        return rows.map(self.item_tokens, desc="tokenising", cache_file_name=str(Path(cache_dir) / name))

    def _cache_key(self, rows: datasets.Dataset) -> str:
        tok = self.processor.tokenizer
        retrieval = None
        if self.augment is not None:
            retrieval = [vars(self.augment.spec), self.augment.cap, self.augment.seed, str(self.augment.index.folder)]
        parts = [rows._fingerprint, len(tok), tok.chat_template, self.processor.to_dict(), self.max_answer_tokens,
                 retrieval]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def __call__(self, rows: list[dict]) -> dict:
        sequences, coords, plddt = self.proteins(rows)
        tokens = [(r["input_ids"], r["labels"]) if "input_ids" in r else tuple(self.item_tokens(r).values())
                  for r in rows]
        return dict(self.processor.from_tokens(sequences, tokens, coords, plddt, padding_side="right"))
