"""Inference at the model's own speed (issue 10), side by side in one run:

(a) single-stream decode tokens/s of the SEPIT stage-2 model (LoRA merged at load) vs the bare SmolLM2-135M-Instruct
    at the same prompt length, and of the same model with its LoRA adapters left unmerged (the old load path);
(b) ``Sepit.ask`` latency for a 400-residue protein and a 32-token answer: unmerged (old) vs merged (new);
(c) closed-set scoring of one item with 4 and 10 options: the old per-option path (prompt + protein encoder re-run
    for every option) vs the new cached path (prompt once, options against its KV cache), next to one 32-token
    generation.

Decode rate = (t(1 + N new tokens) - t(1 new token)) / N, so the prefill is not counted; greedy with a fixed token
count (min_new_tokens = max_new_tokens). Median of ``--repeats`` alternating runs.

    python benchmarks/bench_inference.py --model runs/demo/run/stage2/model [--out benchmarks/results/inference.md]
    python benchmarks/bench_inference.py --standin /tmp/standin --encoder runs/demo/run/stage0/model ...
      (--standin builds a folder of the demo's stage-2 architecture with random adapters: same speed, no training)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
import time
from pathlib import Path

import torch
from machine import LoadWatch  # benchmarks/machine.py (the script's folder is on sys.path)

from sepit.api import Sepit
from sepit.eval.generate import GenerationSettings, score_options, score_options_per_option
from sepit.model.build import load_sepit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uniprot_tsv" / "swissprot2014_go_sample40k.tsv.gz"
LOCATIONS = ["nucleus", "cytoplasm", "mitochondrion", "endoplasmic reticulum", "Golgi apparatus", "cell membrane",
             "secreted", "peroxisome", "lysosome", "chloroplast"]


def protein(length: int) -> str:
    with gzip.open(DATA, "rt") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if len(row["Sequence"]) >= length and set(row["Sequence"][:length]) <= set("ACDEFGHIKLMNPQRSTVWY"):
                return row["Sequence"][:length]
    raise SystemExit(f"no protein of {length} residues in {DATA}")


def build_standin(folder: Path, encoder: str) -> Path:
    """The demo's stage-2 architecture (demo preset: stride 8, 4 experts top-1, LoRA r16 on attention and the
    fused experts) with random non-zero adapters, saved unmerged like stage 2 saves it."""
    from sepit.model.build import apply_lora, build_sepit, save_sepit
    from sepit.model.moe import upcycle_sepit

    torch.manual_seed(0)
    model, proc = build_sepit(encoder, "smollm2-135m-instruct", pool_stride=8, max_residues=256,
                              on_too_long="truncate", lora={"r": 16, "lora_alpha": 32, "target_modules":
                                                            ["q_proj", "k_proj", "v_proj", "o_proj"]})
    from sepit.model.lora_merge import merge_sepit_lora

    merge_sepit_lora(model)
    upcycle_sepit(model, 4, 1, 0.01)
    apply_lora(model, {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                       "target_parameters": ["experts.gate_up_proj", "experts.down_proj"]})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    save_sepit(folder, model, proc)
    return folder


def timed(fn) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        fn()
    return time.perf_counter() - start


def decode_rate(model, inputs: dict, new: int, repeats: int) -> tuple[float, int]:
    """Tokens/s of decoding alone (prefill subtracted), median of ``repeats``; and the prompt length."""
    def gen(n):
        return lambda: model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                      repetition_penalty=1.0, no_repeat_ngram_size=0)
    rates = []
    for _ in range(repeats):
        t1, tn = timed(gen(1)), timed(gen(1 + new))
        rates.append(new / max(tn - t1, 1e-9))
    return statistics.median(rates), int(inputs["input_ids"].shape[1])


def llm_inputs(tok, length: int) -> dict:
    """A chat prompt of exactly ``length`` tokens for the bare LLM."""
    text = tok.apply_chat_template([{"role": "user", "content": "protein " * length}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    head = tok.apply_chat_template([{"role": "user", "content": ""}], tokenize=False, add_generation_prompt=True)
    n_tail = len(tok(head, add_special_tokens=False)["input_ids"]) // 2
    ids = ids[:length - n_tail] + ids[-n_tail:]
    return {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}


def part_a(merged: Sepit, unmerged, args) -> tuple[list[str], dict]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sepit.resources import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    bare = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    item = {"sequence": protein(256), "question": "What is the function of this protein?"}
    from sepit.eval.generate import sepit_inputs

    s_in = sepit_inputs(merged.processor, [item], "cpu")
    b_in = llm_inputs(tok, s_in["input_ids"].shape[1])
    rows = {"bare": [], "merged": [], "unmerged": []}
    for _ in range(args.repeats):  # alternate, so load changes hit every side
        rows["bare"].append(decode_rate(bare, b_in, args.decode_tokens, 1)[0])
        rows["merged"].append(decode_rate(merged.model, s_in, args.decode_tokens, 1)[0])
    rows["unmerged"].append(decode_rate(unmerged, s_in, args.unmerged_tokens, 1)[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    n_prompt = s_in["input_ids"].shape[1]
    return [
        f"### (a) Single-stream decode speed, prompt of {n_prompt} tokens (256-residue protein, stride 8)", "",
        "| model | decode tokens/s | slower than bare LLM | runs |", "|---|---|---|---|",
        f"| bare SmolLM2-135M-Instruct ({b_in['input_ids'].shape[1]}-token prompt) | {med['bare']:.1f} | 1.00x | "
        f"{len(rows['bare'])} x {args.decode_tokens} tokens |",
        f"| SEPIT stage 2, LoRA merged at load (new) | {med['merged']:.1f} | {med['bare'] / med['merged']:.2f}x | "
        f"{len(rows['merged'])} x {args.decode_tokens} tokens |",
        f"| SEPIT stage 2, LoRA unmerged (old) | {med['unmerged']:.2f} | {med['bare'] / med['unmerged']:.1f}x | "
        f"1 x {args.unmerged_tokens} tokens |", "",
        f"Target: at most 1.2x slower than the bare LLM; measured {med['bare'] / med['merged']:.2f}x.", "",
    ], med


def part_b(merged: Sepit, unmerged_sepit: Sepit, args) -> tuple[list[str], dict]:
    seq = protein(400)
    for s in (merged, unmerged_sepit):
        s.processor.max_residues = 400
        s.model.generation_config.min_new_tokens = args.answer_tokens
    ask = {"question": "What is the function of this protein?", "sequence": seq, "max_new_tokens": args.answer_tokens}
    times = {"merged": [], "unmerged": []}
    answers = {}
    for name, s in (("unmerged", unmerged_sepit), ("merged", merged)):
        n = 1 if name == "unmerged" else args.repeats
        for _ in range(n):
            start = time.perf_counter()
            answers[name] = s.ask(**ask).text
            times[name].append(time.perf_counter() - start)
    for s in (merged, unmerged_sepit):
        s.model.generation_config.min_new_tokens = None
        s.processor.max_residues = 256
    med = {k: statistics.median(v) for k, v in times.items()}
    return [
        f"### (b) `Sepit.ask` latency: 400-residue protein, {args.answer_tokens}-token answer", "",
        "| load path | seconds | speed-up | runs |", "|---|---|---|---|",
        f"| LoRA unmerged (old) | {med['unmerged']:.1f} | 1.0x | {len(times['unmerged'])} |",
        f"| LoRA merged at load (new) | {med['merged']:.2f} | {med['unmerged'] / med['merged']:.1f}x | "
        f"{len(times['merged'])} |", "",
        f"Same answer text from both: {answers['merged'] == answers['unmerged']}.", "",
    ], med


def part_c(merged: Sepit, args) -> tuple[list[str], dict]:
    seq = protein(256)
    gen_item = {"sequence": seq, "question": "Where in the cell is this protein located?"}
    model, proc = merged.model, merged.processor
    from sepit.eval.generate import generate_answers

    model.generation_config.min_new_tokens = args.answer_tokens
    settings = GenerationSettings(max_new_tokens=args.answer_tokens)
    rows, med = [], {}
    gen = [timed(lambda: generate_answers(model, proc, [gen_item], settings)) for _ in range(args.repeats)]
    model.generation_config.min_new_tokens = None
    med["generate"] = statistics.median(gen)
    for k in (4, 10):
        item = {**gen_item, "choices": LOCATIONS[:k]}
        old, new = [], []
        for _ in range(args.repeats):
            old.append(timed(lambda it=item: score_options_per_option(model, proc, [it], batch_size=8)))
            new.append(timed(lambda it=item: score_options(model, proc, [it])))
        a = score_options_per_option(model, proc, [item])[0]
        b = score_options(model, proc, [item])[0]
        diff = max(abs(a[c] - b[c]) for c in a)
        med[k] = (statistics.median(old), statistics.median(new))
        rows.append(f"| {k} | {med[k][0]:.2f} | {med[k][1]:.2f} | {med[k][0] / med[k][1]:.1f}x | "
                    f"{med[k][1] / med['generate']:.2f} | {diff:.1e} |")
    return [
        "### (c) Closed-set option scoring of one item (256-residue protein, stride 8)", "",
        f"One {args.answer_tokens}-token generation of the same item: {med['generate']:.2f} s.", "",
        "| options | per-option path (old) s | cached prompt (new) s | speed-up | new / one generation | "
        "max prob. difference |", "|---|---|---|---|---|---|", *rows, "",
    ], med


def main() -> None:
    watch = LoadWatch()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a stage-2 model folder (LoRA saved unmerged)")
    ap.add_argument("--standin", help="build (if absent) and use a stand-in folder of the demo's architecture")
    ap.add_argument("--encoder", default="runs/demo/run/stage0/model", help="stage-0 encoder for --standin")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--unmerged-tokens", type=int, default=8, help="decode tokens of the (slow) unmerged model")
    ap.add_argument("--answer-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/inference.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.model) if args.model else Path(args.standin)
    if args.standin and not (folder / "config.json").is_file():
        build_standin(folder, args.encoder)
    merged = Sepit.from_pretrained(folder, device="cpu")
    unmerged_model, proc = load_sepit(folder, merge_lora=False)
    unmerged = Sepit(unmerged_model, proc, "cpu")
    for s in (merged, unmerged):
        s.model.generation_config.repetition_penalty, s.model.generation_config.no_repeat_ngram_size = 1.0, 0
    lines_a, med_a = part_a(merged, unmerged.model, args)
    lines_b, med_b = part_b(merged, unmerged, args)
    lines_c, med_c = part_c(merged, args)
    what = (f"stand-in of the demo's stage-2 architecture (random adapters, `{folder}`)" if args.standin
            else f"`{folder}`")
    lines = [
        "<!-- bench_inference -->", "## Inference speed: merged LoRA, cached option scoring (issue 10)", "",
        f"Command: `python benchmarks/bench_inference.py {'--standin' if args.standin else '--model'} {folder} "
        f"{f'--encoder {args.encoder} ' if args.standin else ''}"
        f"--repeats {args.repeats}`; model: {what}; {args.threads} torch thread(s), fp32, greedy. "
        f"{watch.note()}", "", *lines_a, *lines_b, *lines_c, "<!-- /bench_inference -->",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"decode_tokens_per_s": med_a, "ask_s": med_b, "scoring_s": {str(k): v for k, v in med_c.items()}},
        indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
