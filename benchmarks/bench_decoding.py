"""Decoding defaults against degenerate loops (issue 10 item 3), chosen by measuring.

The demo model answers the demo's open-ended test items (tasks ``caption`` and ``open``: the same seeded sample
as the demo's evaluation, ``sepit.demo.eval_ids``) under several decoding settings; each set of answers is
scored with the project's metrics (ROUGE-L, BERTScore F1 with MiniLM, corpus BLEU-2) and checked for loops:
the fraction of answers with a repeated word 4-gram, the mean length, and the fraction that ran to the token
limit without ending.

    python benchmarks/bench_decoding.py --model runs/demo/run/stage2/model --demo runs/demo \
        [--max-new-tokens 64] [--out benchmarks/results/decoding.md]
    python benchmarks/bench_decoding.py --llm smollm2-135m-instruct --demo runs/demo ...   (the LLM alone)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from machine import LoadWatch  # benchmarks/machine.py (the script's folder is on sys.path)

# name -> (repetition_penalty, no_repeat_ngram_size)
SETTINGS = {"none": (1.0, 0), "rep 1.1": (1.1, 0), "rep 1.2": (1.2, 0), "no-repeat 3-gram": (1.0, 3),
            "no-repeat 4-gram": (1.0, 4), "rep 1.1 + no-repeat 4-gram": (1.1, 4)}


def repeated_ngram(text: str, n: int = 4) -> bool:
    from sepit.eval.text_metrics import tokenize

    words = tokenize(text)
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def open_items(demo: Path, model_residues: int) -> list[dict]:
    from sepit.data.store import DatasetStore
    from sepit.demo import DemoPlan, eval_ids
    from sepit.eval.predict import dataset_items

    plan = DemoPlan(data=demo / "dataset", out=demo)
    ids = set(eval_ids(plan))
    items = dataset_items(DatasetStore(plan.dataset), "test", max_residues=model_residues)
    return [it for it in items if it["id"] in ids and it["task"] in ("caption", "open")]


class Answerer:
    """The SEPIT model (``--model``) or the LLM alone without the protein (``--llm``: the LLM-only baseline's
    prompt), both through :func:`sepit.eval.generate.generate_continuations`."""

    def __init__(self, model: str | None, llm: str | None):
        if model:
            from sepit.api import Sepit

            self.sepit = Sepit.from_pretrained(model, device="cpu")
            self.model, self.tok = self.sepit.model, self.sepit.processor.tokenizer
            self.max_residues = self.sepit.processor.max_residues
        else:
            from sepit.eval.baselines import _load_llm

            self.sepit, self.max_residues = None, 10**9
            self.tok, self.model = _load_llm(llm, "cpu")

    def inputs(self, chunk: list[dict]) -> dict:
        from sepit.eval.baselines import Item, _prompt_inputs, chat_prompt
        from sepit.eval.generate import sepit_inputs

        if self.sepit is not None:
            return sepit_inputs(self.sepit.processor, chunk, "cpu")
        prompts = [chat_prompt(self.tok, Item(it["id"], it["accession"], it["task"], it["category"], it["question"],
                                              it["answer"])) for it in chunk]
        return _prompt_inputs(self.tok, self.model, prompts)

    def answer(self, items: list[dict], rep: float, ngram: int, max_new: int, batch: int
               ) -> tuple[list[str], list[int]]:
        """Texts and the number of new tokens of each answer (the limit means it never ended)."""
        from sepit.eval.generate import GenerationSettings, batches, generate_continuations

        settings = GenerationSettings(max_new_tokens=max_new, repetition_penalty=rep, no_repeat_ngram_size=ngram)
        eos = self.tok.eos_token_id
        texts, lengths = [], []
        for chunk in batches(items, batch):
            out, new_BN = generate_continuations(self.model, self.tok, self.inputs(chunk), settings)
            texts += out
            lengths += [int((row != eos).cumprod(0).sum()) for row in new_BN]
        return texts, lengths


def main() -> None:
    watch = LoadWatch()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="a SEPIT model folder")
    who.add_argument("--llm", help="an LLM alone, without the protein (e.g. smollm2-135m-instruct)")
    ap.add_argument("--demo", required=True, help="the demo's output folder (holds dataset/)")
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/decoding.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from sepit.eval.metrics import EvalConfig, Scorers, evaluate
    from sepit.eval.records import Prediction

    answerer = Answerer(args.model, args.llm)
    items = open_items(Path(args.demo), answerer.max_residues)
    rows, loops, seconds, answers = [], {}, {}, {}
    for name in args.settings:
        rep, ngram = SETTINGS[name]
        start = time.perf_counter()
        texts, lengths = answerer.answer(items, rep, ngram, args.max_new_tokens, args.batch_size)
        seconds[name] = time.perf_counter() - start
        answers[name] = texts
        loops[name] = {"repeated_4gram": float(np.mean([repeated_ngram(t) for t in texts])),
                       "hit_limit": float(np.mean([n >= args.max_new_tokens for n in lengths])),
                       "mean_words": float(np.mean([len(t.split()) for t in texts]))}
        rows += [Prediction(id=it["id"], accession=it["accession"], task=it["task"], category=it["category"],
                            question=it["question"], answer=it["answer"], prediction=t, model=name)
                 for it, t in zip(items, texts, strict=True)]
        print(name, loops[name], f"{seconds[name]:.0f} s", flush=True)
    scores = evaluate(rows, Scorers(EvalConfig(meteor=False, paper_bleu=False)))["models"]
    table = ["| decoding | ROUGE-L | BERTScore F1 | BLEU-2 | answers with a repeated 4-gram | ran to the limit | "
             "mean words | seconds |", "|---|---|---|---|---|---|---|---|"]
    for name in args.settings:
        o = scores[name]["open"]
        table.append(f"| {name} | {o['rougeL']:.3f} | {o['bertscore_f1']:.3f} | {o['bleu2']:.3f} | "
                     f"{loops[name]['repeated_4gram']:.0%} | {loops[name]['hit_limit']:.0%} | "
                     f"{loops[name]['mean_words']:.1f} | {seconds[name]:.0f} |")
    n_caption = sum(it["task"] == "caption" for it in items)
    who = f"--model {args.model}" if args.model else f"--llm {args.llm}"
    what = ("SEPIT model, LoRA merged at load" if args.model else
            f"{args.llm} alone (the LLM-only baseline's prompt, no protein)")
    lines = ["<!-- bench_decoding -->", "## Decoding defaults against loops (issue 10)", "",
             f"Command: `python benchmarks/bench_decoding.py {who} --demo {args.demo} "
             f"--max-new-tokens {args.max_new_tokens}`. {len(items)} open-ended test items of the demo's evaluation "
             f"({len(items) - n_caption} open, {n_caption} caption), greedy, batch {args.batch_size}; "
             f"{what}. {watch.note()}", "", *table, "", "<!-- /bench_decoding -->"]
    out = Path(args.out)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"items": len(items), "scores": {n: scores[n]["open"] for n in
                                                    args.settings}, "loops": loops, "answers": answers,
                                                    "ids": [it["id"] for it in items]}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
