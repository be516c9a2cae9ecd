"""Peak memory of ``sepit serve`` for the adversarial requests of issue 10, before and after its limits.

For each server code (``--before-repo``, e.g. an export of the commit before the fix, and this checkout) and each
request, a fresh server is started on 127.0.0.1, warmed up with one normal request, then sent the request; the
growth of its peak RSS (``VmHWM`` of /proc/PID/status, exact, not sampled) is recorded with the reply's status.

Requests: ``choices_8kb`` (26 options of ~310 characters, ~8 KB, to /v1/ask), ``gzip_bomb`` (a .pdb.gz whose
content expands to ``--bomb-mib`` MiB), and ``largest_accepted`` (a closed-set request just inside the default
limits: 26 options of 60 characters, a 200-residue protein), which shows the bound the limits give.

Safety on a shared machine: once warm, each server gets an address-space limit (``RLIMIT_AS`` = its current
size + ``--cap-gib``), so a request that needs more fails inside the server (HTTP 500) instead of exhausting
the machine; such a row reads "> cap".

    python benchmarks/bench_serve_adversarial.py [--model DIR] [--before-repo DIR] [--cap-gib 3]
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve_load import HOST, ROOT, free_port, tiny_model  # noqa: E402

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEG"
WORDS = ("kinase binding domain membrane transport protein enzyme activity receptor nucleus cytoplasm signal "
         "pathway regulation transcription factor catalytic subunit complex").split()


def words(n_chars: int, rng: random.Random) -> str:
    out = ""
    while len(out) < n_chars:
        out += rng.choice(WORDS) + " "
    return out[:n_chars].strip()


def gzip_bomb(mib: int) -> bytes:
    """A gzip stream of ``mib`` MiB of blank lines, compressed piece by piece (never held expanded)."""
    packer, block, parts = zlib.compressobj(9, zlib.DEFLATED, 31), b"\n" * 2**20, []
    for _ in range(mib):
        parts.append(packer.compress(block))
    parts.append(packer.flush())
    return b"".join(parts)


def requests(bomb_mib: int) -> dict[str, tuple[str, dict, str]]:
    rng = random.Random(0)
    bomb = gzip_bomb(bomb_mib)
    eight_kb = [f"{i}: " + words(306, rng) for i in range(26)]
    accepted = [f"{i}: " + words(56, rng) for i in range(26)]
    return {
        "choices_8kb": ("/v1/ask", {"sequence": SEQ, "question": "Which describes it best?", "choices": eight_kb,
                                    "max_new_tokens": 4},
                        f"26 options, {sum(map(len, eight_kb))} characters"),
        "gzip_bomb": ("/v1/ask", {"question": "What is it?", "structure": {
            "content": base64.b64encode(bomb).decode(), "format": "pdb.gz", "encoding": "base64"}},
                      f"{len(bomb) / 1024:.0f} KiB .pdb.gz ({len(bomb) * 4 / 3 / 1024:.0f} KiB base64) expanding to "
                      f"{bomb_mib} MiB"),
        "largest_accepted": ("/v1/ask", {"sequence": (SEQ * 3)[:200], "question": "Which describes it best?",
                                         "choices": accepted, "max_new_tokens": 4},
                             f"26 options, {sum(map(len, accepted))} characters, 200 residues"),
    }


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def start(repo: Path, model: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sepit", "serve", "--model", str(model), "--host", HOST, "--port", str(port),
           "--device", "cpu", "--timeout", "300", "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=repo, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(repo)})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("server did not become healthy")


def measure(repo: Path, model: Path, path: str, body: dict, cap_gib: float) -> dict:
    port = free_port()
    server = start(repo, model, port)
    try:
        url = f"http://{HOST}:{port}"
        warm = httpx.post(f"{url}/v1/ask", json={"sequence": SEQ, "question": "What is it?", "max_new_tokens": 4,
                                                 "choices": ["yes", "no"]}, timeout=300)
        assert warm.status_code == 200, warm.text
        base_kib = status_kib(server.pid, "VmHWM")
        cap = status_kib(server.pid, "VmSize") * 1024 + int(cap_gib * 2**30)
        resource.prlimit(server.pid, resource.RLIMIT_AS, (cap, cap))
        t0 = time.perf_counter()
        reply = httpx.post(f"{url}{path}", json=body, timeout=600)
        seconds = time.perf_counter() - t0
        peak_kib = status_kib(server.pid, "VmHWM")
        is_json = reply.headers.get("content-type", "").startswith("application/json")
        error = (reply.json().get("error") or {}) if is_json else {}
        alive = httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    message = str(error.get("message", ""))
    over_cap = reply.status_code == 500 and "alloc" in message.lower()
    asked = re.search(r"allocate (\d+) bytes", message)
    if asked:
        message = f"out of memory under the cap: one tensor of {int(asked[1]) / 2**30:.2f} GiB asked"
    return {"status": reply.status_code, "growth_mib": (peak_kib - base_kib) / 1024, "base_mib": base_kib / 1024,
            "seconds": seconds, "message": message[:140], "over_cap": over_cap, "alive": alive}


def report(rows: list[tuple[str, str, str, dict]], args, model_desc: str) -> str:
    lines = ["# Server memory under adversarial requests (`benchmarks/bench_serve_adversarial.py`)", "",
             f"Model: {model_desc}. A fresh `sepit serve` (CPU, {platform.python_version()}) per row, warmed up "
             "with one normal closed-set request; growth = peak RSS (VmHWM) after the request minus before it. "
             f"Each server is capped at its warm address space + {args.cap_gib:g} GiB (RLIMIT_AS), so a request "
             "needing more fails with HTTP 500 (shown as '> cap').", "",
             "| server | request | what | HTTP | peak RSS growth MiB | s (shared load) | server alive | reply |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for code, name, what, r in rows:
        growth = f"> cap ({r['growth_mib']:.0f} when refused)" if r["over_cap"] else f"{r['growth_mib']:.0f}"
        lines.append(f"| {code} | {name} | {what} | {r['status']} | {growth} | {r['seconds']:.1f} | "
                     f"{'yes' if r['alive'] else 'no'} | {r['message'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: a tiny random SEPIT)")
    parser.add_argument("--before-repo", type=Path, default=None,
                        help="checkout of the server code before the limits (e.g. `git archive` of that commit)")
    parser.add_argument("--cap-gib", type=float, default=3.0, help="address space a request may add (GiB)")
    parser.add_argument("--bomb-mib", type=int, default=1024, help="expanded size of the gzip bomb (MiB)")
    parser.add_argument("--only", nargs="*", default=None, help="request names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_adversarial.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sepit-bench-") as tmp:
        model = args.model or tiny_model(Path(tmp) / "tiny")
        model_desc = str(args.model) if args.model else "tiny random SEPIT (tests/model/tiny_sepit.py; SmolLM2 " \
                                                          "vocabulary, 49,155 tokens; pooling stride 1)"
        servers = [("before", args.before_repo)] if args.before_repo else []
        servers.append(("after", ROOT))
        rows = []
        for name, (path, body, what) in requests(args.bomb_mib).items():
            if args.only and name not in args.only:
                continue
            for code, repo in servers:
                result = measure(repo, model, path, body, args.cap_gib)
                print(code, name, result, flush=True)
                rows.append((code, name, what, result))
    text = report(rows, args, model_desc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
