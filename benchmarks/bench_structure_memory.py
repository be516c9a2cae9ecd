"""Peak memory of one forward+backward pass: plain ESM-2 vs SEPIT's structure-aware encoder (DESIGN 2.1).

Each (mode, attention implementation) runs in its own subprocess on CPU in fp32 with random weights of the
t6_8M architecture (6 layers, hidden 320, 20 heads), B=1, L=1024 tokens (CLS + 1022 residues + EOS):
- ``plain``: ``EsmModel(input_ids, attention_mask)``;
- ``ours``: ``SepitEncoderModel`` with every residue having a point, default memory-efficient path
  (row chunks under activation checkpointing);
- ``naive``: the same model with the straightforward path (``bias_chunk_size=None``).

Measured: peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs after building the model
and inputs and after one warm-up pass) minus the resident size before the measured pass.

Usage: python benchmarks/bench_structure_memory.py [--length 1024] [--attn eager sdpa] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

MODES = ("plain", "ours", "naive")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _build(mode: str, attn: str, length: int):
    import torch
    from transformers import EsmModel

    from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
    from sepit.model.esm_tokenizer import esm_config

    torch.manual_seed(0)
    cfg = esm_config("t6_8M", attn_implementation=attn)
    input_ids = torch.randint(4, 24, (1, length))
    input_ids[0, 0], input_ids[0, -1] = 0, 2
    mask = torch.ones_like(input_ids)
    if mode == "plain":
        model = EsmModel(cfg, add_pooling_layer=False)
        return model, dict(input_ids=input_ids, attention_mask=mask)
    chunk = None if mode == "naive" else SepitEncoderConfig().bias_chunk_size
    model = SepitEncoderModel(SepitEncoderConfig(esm_config=cfg, bias_chunk_size=chunk))
    coords = torch.cumsum(torch.randn(1, length, 3) * 2.2, dim=1)
    coord_mask = mask.bool().clone()
    coord_mask[0, 0] = coord_mask[0, -1] = False
    return model, dict(input_ids=input_ids, attention_mask=mask, coords=coords, coord_mask=coord_mask)


def _step(model, inputs) -> None:
    out = model(**inputs)
    out.last_hidden_state.square().mean().backward()


def run_one(mode: str, attn: str, length: int, threads: int) -> dict:
    """Child process: build, warm up once, reset the peak, measure one forward+backward."""
    import torch

    torch.set_num_threads(threads)
    model, inputs = _build(mode, attn, length)
    model.train()
    _step(model, inputs)
    model.zero_grad(set_to_none=True)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    _step(model, inputs)
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    return {"mode": mode, "attn": attn, "length": length, "peak_delta_mib": (peak - before) / 1024,
            "seconds": seconds}


def _spawn(mode: str, attn: str, length: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--attn", attn, "--length", str(length),
           "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    lines = ["| attn | mode | peak RSS delta (MiB) | ratio to plain | fwd+bwd time (s) |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        plain = next(p for p in rows if p["attn"] == r["attn"] and p["mode"] == "plain")
        lines.append(f"| {r['attn']} | {r['mode']} | {r['peak_delta_mib']:.0f} | "
                     f"{r['peak_delta_mib'] / plain['peak_delta_mib']:.2f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1024, help="tokens per protein incl. CLS/EOS")
    parser.add_argument("--attn", nargs="+", default=["eager", "sdpa"], help="attention implementations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per child process")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--child", choices=MODES, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.attn[0], args.length, args.threads)))
        return
    rows = [_spawn(mode, attn, args.length, args.threads) for attn in args.attn for mode in MODES]
    table = _table(rows)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
