"""Collators: rows of training items -> padded model inputs (dynamic padding per batch)."""

from __future__ import annotations

from sepit.data.store import DatasetStore
from sepit.prompts import format_question
from sepit.train.data import ProteinCropper


class InstructionCollator:
    """Stage 1/2 rows (accession, question, answer, choices) -> ``SepitProcessor`` batch with labels.

    Proteins are cropped to ``max_residues`` (window ``crop_window``, counted in ``crop_counter``); each loses
    its structure with probability ``structure_dropout``; answers are cut to ``max_answer_tokens`` LLM tokens.
    ``augment`` (training with retrieval, :class:`sepit.retrieval.training.TrainingContext`): row -> (evidence
    context of the prompt, answer suffix).
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

    def __call__(self, rows: list[dict]) -> dict:
        sequences, coords, plddt = self.proteins(rows)
        extra = [self.augment(r) for r in rows] if self.augment else [(None, "")] * len(rows)
        return dict(self.processor(
            sequences,
            questions=[format_question(r["question"], r.get("choices"), context)
                       for r, (context, _) in zip(rows, extra, strict=True)],
            answers=[self._answer(r["answer"]) + cited for r, (_, cited) in zip(rows, extra, strict=True)],
            coords=coords, plddt=plddt, padding_side="right",
        ))
