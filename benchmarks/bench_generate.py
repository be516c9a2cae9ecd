"""Generation speed, side by side in one run (issue 5):
(a) KV cache vs re-encoding the whole prefix (protein encoder included) at every step: time and identical tokens;
(b) batched (batch 16, left-padded) vs one item at a time: tokens per second and identical tokens.

Model: SEPIT with the real SmolLM2-135M-Instruct LLM and an ESM-2 t6_8M-architecture encoder (random weights,
with structure), pooling stride 8, real Swiss-Prot sequences cropped to 256 residues; greedy decoding with a
fixed number of new tokens (min_new_tokens = max_new_tokens) so both sides generate the same count.

    python benchmarks/bench_generate.py [--items 16] [--new-tokens 32] [--out benchmarks/results/generate.md]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import time
from pathlib import Path

import numpy as np
import torch

from sepit.model.build import build_sepit
from sepit.model.encoder import SepitEncoderConfig
from sepit.model.esm_tokenizer import esm_config

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uniprot_tsv" / "swissprot2014_go_sample40k.tsv.gz"
QUESTIONS = ["What is the function of this protein?", "Where in the cell is this protein located?",
             "Which biological process is this protein involved in?", "Does this protein bind DNA? Answer yes or no."]


def items(n: int, seed: int = 0) -> list[dict]:
    with gzip.open(DATA, "rt") as fh:
        seqs = [row["Sequence"][:256] for row in csv.DictReader(fh, delimiter="\t")]
    rng = random.Random(seed)
    out = []
    for i, seq in enumerate(rng.sample(seqs, n)):
        coords = np.cumsum(np.random.default_rng(i).normal(0, 2.2, (len(seq), 3)), axis=0).astype("float32")
        out.append({"sequence": seq, "coords": coords, "question": QUESTIONS[i % len(QUESTIONS)]})
    return out


def generate(model, processor, batch: list[dict], new_tokens: int, use_cache: bool) -> tuple[list[list[int]], float]:
    inputs = processor([b["sequence"] for b in batch], questions=[b["question"] for b in batch],
                       coords=[b["coords"] for b in batch], padding_side="left")
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             use_cache=use_cache)
    secs = time.perf_counter() - start
    return out[:, inputs["input_ids"].shape[1]:].tolist(), secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--cache-items", type=int, default=2, help="items for the cache/no-cache comparison")
    ap.add_argument("--cache-new-tokens", type=int, default=None, help="new tokens there (default: --new-tokens)")
    ap.add_argument("--stride", type=int, default=8, help="pooling stride (1 = the paper: a position per residue)")
    ap.add_argument("--only-cache", action="store_true", help="skip the batching comparison")
    ap.add_argument("--out", default="benchmarks/results/generate.md")
    args = ap.parse_args()
    torch.manual_seed(0)
    enc = SepitEncoderConfig(esm_config=esm_config("t6_8M"), num_kernels=64)
    model, processor = build_sepit(enc, "smollm2-135m-instruct", pool_stride=args.stride, max_residues=256)
    model.eval()
    data = items(args.items)
    generate(model, processor, data[:1], 2, True)  # warm-up

    cache_rows, cache_tokens = [], args.cache_new_tokens or args.new_tokens
    for item in data[: args.cache_items]:
        with_cache, t_cache = generate(model, processor, [item], cache_tokens, True)
        without, t_plain = generate(model, processor, [item], cache_tokens, False)
        cache_rows.append((t_cache, t_plain, with_cache == without))
    single_tokens, t_single = [], 0.0
    for item in [] if args.only_cache else data:
        toks, secs = generate(model, processor, [item], args.new_tokens, True)
        single_tokens += toks
        t_single += secs
    batch_tokens, t_batch = ([], 1.0) if args.only_cache else generate(model, processor, data, args.new_tokens, True)
    same = sum(a == b for a, b in zip(single_tokens, batch_tokens, strict=True))
    n_tok = args.items * args.new_tokens
    t_c, t_p = sum(r[0] for r in cache_rows), sum(r[1] for r in cache_rows)
    lines = [
        "## Generation: KV cache and batching (issue 5)", "",
        f"Command: `python benchmarks/bench_generate.py --items {args.items} --new-tokens {args.new_tokens} "
        f"--cache-items {args.cache_items} --cache-new-tokens {cache_tokens} --stride {args.stride}"
        f"{' --only-cache' if args.only_cache else ''}`; "
        f"{torch.get_num_threads()} CPU threads, fp32. SEPIT = SmolLM2-135M-Instruct + ESM-2 t6_8M architecture "
        f"(random encoder weights, with C-alpha coordinates), stride {args.stride}, real sequences cropped to 256 "
        "residues; "
        "greedy, fixed number of new tokens.", "",
        "| comparison | baseline | sepit | speed-up | identical tokens |", "|---|---|---|---|---|",
        f"| KV cache vs re-encoding the prefix each step ({len(cache_rows)} items x {cache_tokens} tokens) | "
        f"{t_p:.1f} s | {t_c:.1f} s | {t_p / t_c:.1f}x | {sum(r[2] for r in cache_rows)}/{len(cache_rows)} |",
    ]
    if not args.only_cache:
        lines.append(f"| batch {args.items} vs one item at a time ({n_tok} tokens) | {n_tok / t_single:.1f} tok/s | "
                     f"{n_tok / t_batch:.1f} tok/s | {t_single / t_batch:.1f}x | {same}/{args.items} |")
    out = Path(args.out)
    previous = out.read_text() if out.is_file() else ""
    out.write_text(previous + ("\n" if previous else "") + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
