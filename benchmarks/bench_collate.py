"""Training batches from items tokenised once vs per batch (issue 14), side by side in one run.

The stage-1/2 collator either renders the chat template and tokenises every item each time it is batched (three
template renders and two tokenizer calls per item), or reads ``input_ids``/``labels`` tokenised once by
``InstructionCollator.pretokenize`` and only expands the protein placeholder. Both build the same batches (tested
in tests/train/test_pretokenize.py); this measures collated items per second on a built dataset with the real
SmolLM2 tokenizer, and the one-off cost of tokenising the items.

    python benchmarks/bench_collate.py --dataset runs/demo/dataset [--items 2000] [--batch 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sepit.data.store import DatasetStore
from sepit.model.esm_tokenizer import esm_tokenizer
from sepit.model.processor import SepitProcessor
from sepit.resources import resolve_model
from sepit.train.collate import InstructionCollator
from sepit.train.config import DataSpec
from sepit.train.data import instruction_items


def items_per_second(collator, rows, batch: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            collator([rows[i] for i in range(start, min(start + batch, len(rows)))])
        best = max(best, len(rows) / (time.perf_counter() - started))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "collate.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    processor = SepitProcessor(tokenizer, esm_tokenizer(), pool_stride=8, max_residues=256, on_too_long="truncate")
    store = DatasetStore(args.dataset)
    spec = DataSpec(split="train", tasks=["caption", "open", "closed"], max_items=args.items, max_residues=256)
    rows = instruction_items(store, spec, seed=0, stride=8)
    collator = InstructionCollator(store, processor, max_residues=256, max_answer_tokens=256)
    started = time.perf_counter()
    tokenised = collator.pretokenize(rows)
    once = time.perf_counter() - started
    per_batch = items_per_second(collator, rows, args.batch, args.repeats)
    pre = items_per_second(collator, tokenised, args.batch, args.repeats)
    text = "\n".join([
        "<!-- bench_collate -->",
        "## Training batches: items tokenised once vs per batch (bench_collate.py)",
        "",
        f"Command: `python benchmarks/bench_collate.py --dataset {args.dataset} --items {args.items} "
        f"--batch {args.batch}`; {len(rows)} stage-1/2 training items (caption, open, closed) of that dataset, "
        f"SmolLM2-135M-Instruct tokenizer and chat template, proteins cropped to 256 residues, stride 8, batch "
        f"{args.batch}, 1 thread; best of {args.repeats} passes. Collating includes reading and cropping each "
        "protein from the store (the same on both paths).",
        "",
        "| path | collated items/s | speed-up |",
        "|---|---|---|",
        f"| template + tokenizer per batch (before) | {per_batch:.0f} | 1.00x |",
        f"| tokenised once, placeholder expanded per batch (now) | {pre:.0f} | {pre / per_batch:.2f}x |",
        "",
        f"One-off tokenisation of the {len(rows)} items: {once:.1f} s ({len(rows) / once:.0f} items/s), once per "
        "run (cached as Arrow beside the stage's output, reused on resume).",
        "<!-- /bench_collate -->",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
