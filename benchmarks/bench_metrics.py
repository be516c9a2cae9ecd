"""Speed of the evaluation metrics over realistic protein-function sentences (GO term definitions).

References are 1,000 GO term definitions; hypotheses are, alternately, a perturbed copy (about 20% of words
dropped or swapped for words of another definition) and the definition of another term of the same
namespace. Times are for scoring only (scorer construction reported separately), on one CPU thread.

    python benchmarks/bench_metrics.py [--n 1000] [--per-item-n 200]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import time
from pathlib import Path

GO = Path(__file__).resolve().parents[2] / "shared" / "data" / "go_terms"


def load_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    path = next(GO.glob("*.tsv.gz"))
    with gzip.open(path, "rt") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if len(r["definition"].split()) >= 8]
    rng = random.Random(seed)
    refs_rows = rng.sample(rows, n)
    by_ns: dict[str, list[str]] = {}
    for r in rows:
        by_ns.setdefault(r["namespace"], []).append(r["definition"])
    hyps, refs = [], []
    for i, r in enumerate(refs_rows):
        ref = r["definition"]
        if i % 2:
            hyps.append(rng.choice(by_ns[r["namespace"]]))
        else:
            other = rng.choice(rows)["definition"].split()
            words = [w if rng.random() > 0.1 else rng.choice(other) for w in ref.split() if rng.random() > 0.1]
            hyps.append(" ".join(words))
        refs.append(ref)
    return hyps, refs


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    import torch

    from sepit.eval.bertscore import BertScore
    from sepit.eval.text_metrics import MeteorScorer, RougeScorer, corpus_bleu, paper_bleu_items

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--per-item-n", type=int, default=200, help="items for the per-item BERTScore loop")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hyps, refs = load_pairs(args.n)
    words = sum(len(r.split()) for r in refs) / len(refs)
    print(f"{args.n} pairs, mean reference length {words:.1f} words, torch threads 1")
    rouge, t_build = timed(RougeScorer)
    _, t = timed(rouge.items, hyps, refs)
    print(f"ROUGE-1/2/L (stemmed, cached stemmer): {t:.2f} s (build {t_build:.2f} s)")
    from rouge_score import rouge_scorer

    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    _, t = timed(lambda: [plain.score(r, h) for h, r in zip(hyps, refs, strict=True)])
    print(f"ROUGE-1/2/L (rouge-score default tokenizer): {t:.2f} s")
    _, t = timed(corpus_bleu, hyps, refs)
    print(f"corpus BLEU-1..4 (sacrebleu): {t:.2f} s")
    meteor, t_build = timed(MeteorScorer)
    _, t = timed(meteor.items, hyps, refs)
    print(f"METEOR (NLTK + WordNet): {t:.2f} s (WordNet load {t_build:.2f} s)")
    bert, t_build = timed(BertScore, "minilm-l6-v2", None, args.batch_size)
    _, t = timed(paper_bleu_items, hyps, refs, bert.wordpiece)
    print(f"paper BLEU-1..4 (per item on WordPiece tokens): {t:.2f} s")
    _, t_all = timed(bert.score, hyps, refs)
    print(f"BERTScore MiniLM-L6 batched (batch {args.batch_size}): {t_all:.2f} s for {len(hyps)} items "
          f"(model load {t_build:.2f} s)")
    k = args.per_item_n
    h, r = hyps[:k], refs[:k]
    _, t_single = timed(lambda: [bert.score([x], [y]) for x, y in zip(h, r, strict=True)])
    _, t_batched = timed(bert.score, h, r)
    bert.batch_size = 64
    _, t_64 = timed(bert.score, h, r)
    print(f"BERTScore on the first {k} items: per item {t_single:.2f} s, batch {args.batch_size} {t_batched:.2f} s "
          f"(per-item / batched = {t_single / t_batched:.2f}x), batch 64 {t_64:.2f} s "
          f"(per-item / batched = {t_single / t_64:.2f}x)")

if __name__ == "__main__":
    main()
