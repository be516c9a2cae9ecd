"""Collators: rows of training items -> padded model inputs (dynamic padding per batch)."""

from __future__ import annotations

from sepit.data.store import DatasetStore
from sepit.prompts import format_question
from sepit.train.data import crop, drop_structure


class InstructionCollator:
    """Stage 1/2 rows (accession, question, answer, choices) -> ``SepitProcessor`` batch with labels.

    Proteins are cropped to ``max_residues``; each loses its structure with probability ``structure_dropout``;
    answers are cut to ``max_answer_tokens`` LLM tokens. ``augment`` (training with retrieval,
    :class:`sepit.retrieval.training.TrainingContext`): row -> (evidence context of the prompt, answer suffix).
    """

    def __init__(self, store: DatasetStore, processor, max_residues: int, structure_dropout: float = 0.0,
                 max_answer_tokens: int = 256, augment=None):
        self.store, self.processor, self.augment = store, processor, augment
        self.max_residues, self.structure_dropout = max_residues, structure_dropout
        self.max_answer_tokens = max_answer_tokens

    def _answer(self, text: str) -> str:
        tok = self.processor.tokenizer
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= self.max_answer_tokens else tok.decode(ids[: self.max_answer_tokens])

    def __call__(self, rows: list[dict]) -> dict:
        proteins = [crop(self.store.protein(r["accession"]), self.max_residues) for r in rows]
        coords = drop_structure([c for _, c, _ in proteins], self.structure_dropout)
        plddt = [p if c is not None else None for (_, _, p), c in zip(proteins, coords, strict=True)]
        extra = [self.augment(r) for r in rows] if self.augment else [(None, "")] * len(rows)
        return dict(self.processor(
            [s for s, _, _ in proteins],
            questions=[format_question(r["question"], r.get("choices"), context)
                       for r, (context, _) in zip(rows, extra, strict=True)],
            answers=[self._answer(r["answer"]) + cited for r, (_, cited) in zip(rows, extra, strict=True)],
            coords=coords, plddt=plddt, padding_side="right",
        ))
