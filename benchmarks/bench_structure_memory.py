"""Peak memory of one forward+backward pass: plain ESM-2 vs SEPIT's structure-aware encoder (DESIGN 2.1).

Each (length, mode, attention implementation) runs in its own subprocess (one at a time) on CPU in fp32 with
random weights of an ESM-2 architecture (``--size``: t6_8M by default, t33_650M for the paper's shape: 33 layers,
hidden 1280, 20 heads, intermediate 5120), B=1, L tokens (CLS + L-2 residues + EOS):
- ``plain``: ``EsmModel(input_ids, attention_mask)``;
- ``ours``: ``SepitEncoderModel`` with every residue having a point, default memory-efficient path
  (row chunks under activation checkpointing); with ``--attn sdpa`` its attention is
  ``sepit.model.bias_attention`` (fused CPU kernel forward, chunked backward giving the bias gradient);
- ``mathbias``: ``ours`` with that attention turned off (``fused_bias_attention(False)``): transformers' sdpa,
  which falls back to the math path for a bias that requires grad (the path before issue 13 item 5);
- ``naive``: the same model with the straightforward path (``bias_chunk_size=None``);
- ``frozen``: ``ours`` with the structure module frozen (no gradient reaches the bias): shows how much of the
  excess is the bias gradient and the attention fallback it forces.

Measured: peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs after building the model,
allocating the parameter gradients and, unless ``--no-warmup``, one warm-up pass) minus the resident size
before the measured pass (weights and their gradients are excluded: they are the same in every mode), plus the
whole-process peak. Each finished configuration is appended to ``--jsonl`` at once (long runs keep partial
results).

Usage: python benchmarks/bench_structure_memory.py [--size t33_650M] [--lengths 512 1024] [--attn eager sdpa]
       [--modes plain ours] [--no-warmup] [--jsonl FILE] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

MODES = ("plain", "ours", "naive", "frozen", "mathbias")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _build(mode: str, attn: str, length: int, size: str, layers: int | None):
    import torch
    from transformers import EsmModel

    from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
    from sepit.model.esm_tokenizer import esm_config

    torch.manual_seed(0)
    cfg = esm_config(size, max_positions=max(length, 1026), attn_implementation=attn)
    if layers:
        cfg.num_hidden_layers = layers
    input_ids = torch.randint(4, 24, (1, length))
    input_ids[0, 0], input_ids[0, -1] = 0, 2
    mask = torch.ones_like(input_ids)
    if mode == "plain":
        model = EsmModel(cfg, add_pooling_layer=False)
        return model, dict(input_ids=input_ids, attention_mask=mask)
    chunk = None if mode == "naive" else SepitEncoderConfig().bias_chunk_size
    model = SepitEncoderModel(SepitEncoderConfig(esm_config=cfg, bias_chunk_size=chunk))
    if mode == "frozen":
        model.structure.requires_grad_(False)
    coords = torch.cumsum(torch.randn(1, length, 3) * 2.2, dim=1)
    coord_mask = mask.bool().clone()
    coord_mask[0, 0] = coord_mask[0, -1] = False
    return model, dict(input_ids=input_ids, attention_mask=mask, coords=coords, coord_mask=coord_mask)


def _step(model, inputs) -> None:
    out = model(**inputs)
    out.last_hidden_state.square().mean().backward()


def run_one(mode: str, attn: str, length: int, threads: int, size: str, warmup: bool, layers: int | None) -> dict:
    """Child process: build, allocate gradients, warm up once (optional), reset the peak, measure one
    forward+backward."""
    import torch

    from sepit.model.bias_attention import fused_bias_attention

    torch.set_num_threads(threads)
    with fused_bias_attention(mode != "mathbias"):
        return _measure(mode, attn, length, size, warmup, layers, threads)


def _measure(mode: str, attn: str, length: int, size: str, warmup: bool, layers: int | None, threads: int) -> dict:
    import torch

    model, inputs = _build(mode, attn, length, size, layers)
    model.train()
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    if warmup:
        _step(model, inputs)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    _step(model, inputs)
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    from sepit.model.esm_tokenizer import ESM_SIZES

    return {"size": size, "layers": layers or ESM_SIZES[size][0], "mode": mode, "attn": attn, "length": length,
            "peak_delta_mib": (peak - before) / 1024, "peak_total_mib": peak / 1024,
            "seconds": seconds, "warmup": warmup, "threads": threads}


def _spawn(mode: str, attn: str, length: int, layers: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--attn", attn, "--lengths", str(length),
           "--threads", str(args.threads), "--size", args.size, "--layers", str(layers)]
    if not args.warmup:
        cmd.append("--no-warmup")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    lines = ["| L | layers | attn | mode | peak RSS delta (MiB) | ratio to plain (same L, attn) | process peak (MiB) | "
             "fwd+bwd time (s) |", "|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        plain = next((p for p in rows if p["attn"] == r["attn"] and p["length"] == r["length"]
                      and p["layers"] == r["layers"] and p["mode"] == "plain"), None)
        ratio = f"{r['peak_delta_mib'] / plain['peak_delta_mib']:.2f}" if plain else "-"
        lines.append(f"| {r['length']} | {r['layers']} | {r['attn']} | {r['mode']} | {r['peak_delta_mib']:.0f} | "
                     f"{ratio} | {r['peak_total_mib']:.0f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def extrapolate(rows: list[dict], full_layers: int) -> str:
    """Per (L, attn, mode) measured at two depths n1 < n2: peak(n) = fixed + n * per_layer, at ``full_layers``."""
    lines = [f"| L | attn | mode | fixed (MiB) | per layer (MiB) | at {full_layers} layers (MiB) | ratio to plain |",
             "|---:|---|---|---:|---:|---:|---:|"]
    fits = {}
    for key in dict.fromkeys((r["length"], r["attn"], r["mode"]) for r in rows):
        pts = sorted((r["layers"], r["peak_delta_mib"]) for r in rows if (r["length"], r["attn"], r["mode"]) == key)
        if len(pts) < 2:
            continue
        (n1, m1), (n2, m2) = pts[0], pts[-1]
        per = (m2 - m1) / (n2 - n1)
        fits[key] = (m1 - n1 * per, per, m1 - n1 * per + full_layers * per)
    for (length, attn, mode), (fixed, per, full) in fits.items():
        plain = fits.get((length, attn, "plain"))
        ratio = f"{full / plain[2]:.2f}" if plain else "-"
        lines.append(f"| {length} | {attn} | {mode} | {fixed:.0f} | {per:.0f} | {full:.0f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="t6_8M", help="ESM-2 architecture (t6_8M, ..., t33_650M)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024], help="tokens per protein incl. CLS/EOS")
    parser.add_argument("--attn", nargs="+", default=["eager", "sdpa"], help="attention implementations")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["plain", "ours", "naive"])
    parser.add_argument("--layers", type=int, nargs="+", default=[0],
                        help="encoder depths to run (0 = the size's own); memory is linear in depth, so two "
                             "depths give the per-layer cost and the fixed cost (extrapolate to the full depth)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per child process")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="measure the first pass (for shapes where one pass takes minutes)")
    parser.add_argument("--jsonl", type=Path, default=None, help="append each finished configuration here")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--child", choices=MODES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--summarize", type=Path, default=None,
                        help="only print the tables of a --jsonl file (with the depth extrapolation)")
    args = parser.parse_args()
    if args.summarize:
        from sepit.model.esm_tokenizer import ESM_SIZES

        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        print(_table(rows) + "\n\n" + extrapolate(rows, ESM_SIZES[rows[0]["size"]][0]))
        return
    if args.child:
        print(json.dumps(run_one(args.child, args.attn[0], args.lengths[0], args.threads, args.size,
                                 args.warmup, args.layers[0] or None)))
        return
    rows = []
    for length in args.lengths:
        for attn in args.attn:
            for layers in args.layers:
                for mode in args.modes:
                    rows.append(_spawn(mode, attn, length, layers, args))
                    if args.jsonl:
                        with args.jsonl.open("a") as f:
                            f.write(json.dumps(rows[-1]) + "\n")
    table = _table(rows)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
