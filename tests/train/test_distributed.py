"""Stage 1 of the debug preset with 2 processes on CPU (gloo): PyTorch DDP, and DeepSpeed ZeRO-2, both through
the same Trainer engine, launched with torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import debug_overrides

ZERO2 = Path(__file__).resolve().parents[2] / "sepit" / "configs" / "deepspeed_zero2.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(dataset, out: Path, *extra: str) -> subprocess.CompletedProcess:
    overrides = debug_overrides(dataset, out, "stage1.optim.max_steps=3", "stage1.optim.batch_size=2", *extra)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "sepit", "train", "--stage", "1", "--config", "debug",
           "--init-from", "none", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _check(result, out: Path, engine: str) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    model = out / "stage1" / "model"
    assert (model / "model.safetensors").is_file() and (model / "config.json").is_file()
    summary = json.loads((out / "stage1" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["engine"] == engine and summary["steps"] == 3
    rows = [json.loads(x) for x in (out / "stage1" / "metrics.jsonl").read_text().splitlines()]
    logged = [r["step"] for r in rows if "loss" in r]
    assert logged == [1, 2, 3]  # only the main process writes the log


@pytest.mark.slow
def test_ddp_two_processes(tiny_dataset, tmp_path):
    result = _torchrun(tiny_dataset, tmp_path)
    _check(result, tmp_path, "ddp")


@pytest.mark.slow
def test_deepspeed_zero2_two_processes(tiny_dataset, tmp_path):
    pytest.importorskip("deepspeed")
    result = _torchrun(tiny_dataset, tmp_path, f"deepspeed={ZERO2}")
    _check(result, tmp_path, "deepspeed")
