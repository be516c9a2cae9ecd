"""MoE upcycling cost (DESIGN 2.6): forward+backward time of the top-1, E-expert Mixtral upcycled from a
dense Llama vs that dense Llama, measured side by side (interleaved repeats, median) in one run.

    python benchmarks/bench_moe.py --layers 4 --batch 4 --tokens 256 --repeats 3

Default model: SmolLM2-135M's layer shape (hidden 576, intermediate 1536, 9/3 heads, vocab 49152) with
fewer layers so that it runs on a shared CPU. Target: MoE/dense <= 1.3x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sepit.model.moe import upcycle_llm


def smollm2_like(layers: int, vocab: int) -> LlamaConfig:
    return LlamaConfig(vocab_size=vocab, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                       num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True,
                       max_position_embeddings=2048)


def step_seconds(model, ids_BT: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out = model(input_ids=ids_BT, labels=ids_BT)
    out.loss.backward()
    return time.perf_counter() - start


def set_experts(model, impl: str) -> None:
    model.config._experts_implementation = impl
    for module in model.modules():
        if hasattr(module, "config") and module is not model:
            module.config._experts_implementation = impl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4, help="decoder layers")
    ap.add_argument("--vocab", type=int, default=49152, help="vocabulary size (SmolLM2: 49152)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=256, help="sequence length T")
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impls", default="eager,batched_mm,grouped_mm", help="Mixtral experts implementations")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = LlamaForCausalLM(smollm2_like(args.layers, args.vocab)).train()
    moe = upcycle_llm(dense, num_experts=args.experts, top_k=args.top_k, aux_coef=0.01).train()
    ids_BT = torch.randint(0, args.vocab, (args.batch, args.tokens))
    impls = [i for i in args.impls.split(",") if i]
    times: dict[str, list[float]] = {"dense": [], **{f"moe[{i}]": [] for i in impls}}
    for name in times:  # warm-up
        if name != "dense":
            set_experts(moe, name[4:-1])
        step_seconds(dense if name == "dense" else moe, ids_BT)
    for _ in range(args.repeats):
        for name in times:
            if name != "dense":
                set_experts(moe, name[4:-1])
            times[name].append(step_seconds(dense if name == "dense" else moe, ids_BT))
    base = statistics.median(times["dense"])
    print(f"threads={torch.get_num_threads()} layers={args.layers} vocab={args.vocab} B={args.batch} "
          f"T={args.tokens} E={args.experts} top_k={args.top_k} repeats={args.repeats}")
    print("| model | median fwd+bwd s | ratio vs dense |\n|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
