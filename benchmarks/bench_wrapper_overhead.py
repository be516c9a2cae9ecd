"""SEPIT wrapper overhead (DESIGN 2.4-2.5): one training step (forward + backward + AdamW step) of
SepitForConditionalGeneration with a frozen encoder vs the bare LLM on the same number of LLM tokens,
measured side by side (interleaved repeats, median) in one run.

    python benchmarks/bench_wrapper_overhead.py --layers 30 --batch 2 --residues 200 --repeats 3

LLM: SmolLM2-135M-Instruct's architecture (random weights, real config). Encoder: ESM-2 ``--esm`` preset
with the structure module, frozen, given C-alpha coordinates. Target: SEPIT/bare <= 1.1x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaConfig

from sepit.model.build import build_sepit
from sepit.model.encoder import SepitEncoderConfig
from sepit.model.esm_tokenizer import esm_config
from sepit.resources import resolve_model

AA = "ACDEFGHIKLMNPQRSTVWY"


def make_batch(proc, batch: int, residues: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list(AA), residues)) for _ in range(batch)]
    coords = [np.cumsum(rng.normal(0, 2.2, (residues, 3)), 0).astype("float32") for _ in range(batch)]
    return proc(seqs, questions=["What is the function of this protein?"] * batch,
                answers=["It is an enzyme that transfers phosphate groups to serine residues."] * batch,
                coords=coords)


def train_step(model, optimizer, inputs: dict) -> float:
    start = time.perf_counter()
    model(**inputs).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def features_time(model, protein_in: dict) -> float:
    start = time.perf_counter()
    model.get_protein_features(**protein_in)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=30, help="LLM layers (SmolLM2-135M: 30)")
    ap.add_argument("--esm", default="t6_8M", help="ESM-2 size preset of the encoder")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--residues", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = resolve_model("smollm2-135m-instruct")
    llm_cfg = LlamaConfig.from_pretrained(path, num_hidden_layers=args.layers)
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    enc_cfg = SepitEncoderConfig(esm_config=esm_config(args.esm))
    model, proc = build_sepit(enc_cfg, llm_cfg, tok, freeze_encoder=True)
    model.train()
    sepit_in = dict(make_batch(proc, args.batch, args.residues))
    bare = model.language_model  # the same LLM module: identical weights and kernels
    bare_in = {k: sepit_in[k] for k in ("input_ids", "attention_mask", "labels")}
    bare_in["input_ids"] = bare_in["input_ids"].masked_fill(bare_in["input_ids"] >= 49152, 100)
    opt_sepit = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    opt_bare = torch.optim.AdamW([p for p in bare.parameters() if p.requires_grad], lr=1e-5)
    runs = {"bare LLM": (bare, opt_bare, bare_in), "SEPIT (frozen encoder)": (model, opt_sepit, sepit_in)}
    times = {name: [] for name in runs}
    for m, opt, inputs in runs.values():  # warm-up
        train_step(m, opt, inputs)
    for _ in range(args.repeats):
        for name, (m, opt, inputs) in runs.items():
            times[name].append(train_step(m, opt, inputs))
    protein_in = {k: v for k, v in sepit_in.items() if k not in bare_in}
    times["of which: protein features (frozen encoder + projector, forward)"] = [
        features_time(model, protein_in) for _ in range(args.repeats)]
    base = statistics.median(times["bare LLM"])
    B, T = sepit_in["input_ids"].shape
    print(f"threads={torch.get_num_threads()} LLM layers={args.layers} encoder={args.esm} B={B} T={T} "
          f"residues={args.residues} repeats={args.repeats}")
    print("| model | median step s | ratio vs bare |\n|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
