"""Training items tokenised once: the collator's batches from pre-tokenised rows equal the processor's batches
rendered with the chat template per batch (issue 14), with evidence context, long answers and cropped proteins."""

from __future__ import annotations

import torch

from sepit.data.store import DatasetStore
from sepit.prompts import format_question
from sepit.train.collate import InstructionCollator
from sepit.train.config import DataSpec
from sepit.train.data import instruction_items
from tests.model.tiny_sepit import tiny_sepit


def _collator(store, augment=None) -> InstructionCollator:
    _, processor = tiny_sepit(pool_stride=4, max_residues=48, on_too_long="truncate")
    return InstructionCollator(store, processor, max_residues=48, max_answer_tokens=12, augment=augment)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _templated(collator: InstructionCollator, rows: list[dict]) -> dict:
    """Reference: the processor's full path (chat template rendered with the expanded protein run)."""
    sequences, coords, plddt = collator.proteins(rows)
    extra = [collator.augment(r) if collator.augment else (None, "") for r in rows]
    pairs = list(zip(rows, extra, strict=True))
    return dict(collator.processor(
        sequences, questions=[format_question(r["question"], r.get("choices"), c) for r, (c, _) in pairs],
        answers=[f"{cited} {collator._answer(r['answer'])}".strip() for r, (_, cited) in pairs],
        coords=coords, plddt=plddt, padding_side="right"))


def _rows(tiny_dataset):
    store = DatasetStore(tiny_dataset)
    spec = DataSpec(split="train", tasks=["caption", "open", "closed"], max_items=24, max_residues=48)
    return store, instruction_items(store, spec, seed=0, stride=4)


def test_pretokenised_batches_equal_templated_ones(tiny_dataset):
    store, rows = _rows(tiny_dataset)
    collator = _collator(store)
    tokenised = collator.pretokenize(rows)
    assert "input_ids" in tokenised.column_names and len(tokenised) == len(rows)
    for start in range(0, len(rows), 6):
        batch = range(start, min(start + 6, len(rows)))
        _assert_same(collator([rows[i] for i in batch]), collator([tokenised[i] for i in batch]))
        _assert_same(_templated(collator, [rows[i] for i in batch]), collator([tokenised[i] for i in batch]))
    assert collator.crop_counter.cropped > 0  # long proteins were cropped on both paths


def test_pretokenised_batches_carry_the_evidence_context(tiny_dataset):
    store, rows = _rows(tiny_dataset)
    collator = _collator(store, augment=lambda row: (f"Similar entry {row['accession']}: a kinase.", "[UniProt:X1]"))
    tokenised = collator.pretokenize(rows.select(range(8)))
    _assert_same(collator([rows[i] for i in range(8)]), collator([tokenised[i] for i in range(8)]))
    _assert_same(_templated(collator, [rows[i] for i in range(8)]), collator([tokenised[i] for i in range(8)]))
    text = collator.processor.tokenizer.decode(tokenised[0]["input_ids"])
    assert f"Similar entry {rows[0]['accession']}" in text and text.count("<protein>") == 1
    labels = [t for t in tokenised[0]["labels"] if t != -100]  # the answer opens with the citation
    assert collator.processor.tokenizer.decode(labels).startswith("[UniProt:X1] ")


def test_token_cache_is_written_once_and_reused(tiny_dataset, tmp_path):
    store, rows = _rows(tiny_dataset)
    collator = _collator(store)
    first = collator.pretokenize(rows, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("tokens-")
    again = collator.pretokenize(rows, tmp_path)
    assert sorted(tmp_path.iterdir()) == files and again["input_ids"] == first["input_ids"]
    other = _collator(store)
    other.max_answer_tokens = 4  # another answer cap: another key, not the stale file
    other.pretokenize(rows, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
