"""Bounded load test of ``sepit serve``: N concurrent clients send a fixed number of requests to a server on
127.0.0.1 (a subprocess started here), once per ``--batch-sizes`` value, side by side in one run.

Requests cycle through the endpoints: /v1/ask open and closed-set, /v1/chat/completions, and a streamed
chat completion every 8th request. Recorded per run: throughput, p50/p95 latency, errors (non-200 or an
error event in a stream) and lost requests (sent without any reply). Zero errors and zero lost expected.

    python benchmarks/bench_serve_load.py [--model DIR] [--clients 16] [--requests 160] [--batch-sizes 1,8]

Without ``--model`` a tiny random model (tests/model/tiny_sepit.py) is saved to a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"  # the only target: never a remote host
MAX_REQUESTS = 2000
ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = ["MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKL",
             "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEG",
             "GAVLIPFMWSTCYNQDEKRH" * 3]


def tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "model"))
    from tiny_sepit import tiny_sepit

    from sepit.model.build import save_sepit

    save_sepit(folder, *tiny_sepit(seed=0))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, batch_size: int, max_new_tokens: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sepit", "serve", "--model", str(model), "--host", HOST, "--port", str(port),
           "--device", "cpu", "--max-batch-size", str(batch_size), "--default-new-tokens", str(max_new_tokens),
           "--timeout", "120", "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("server did not become healthy within 120 s")


def request_for(i: int) -> tuple[str, dict, bool]:
    seq, question = SEQUENCES[i % len(SEQUENCES)], f"What is the function of this protein? (request {i})"
    if i % 8 == 7:
        return "/v1/chat/completions", {"messages": [{"role": "user", "content": question}], "stream": True,
                                        "protein": {"sequence": seq}}, True
    if i % 4 == 1:
        return "/v1/ask", {"sequence": seq, "question": "Does it bind DNA?", "choices": ["yes", "no"]}, False
    if i % 4 == 2:
        return "/v1/chat/completions", {"messages": [{"role": "user", "content": question}],
                                        "protein": {"sequence": seq}}, False
    return "/v1/ask", {"sequence": seq, "question": question}, False


async def one(client: httpx.AsyncClient, i: int) -> tuple[float, str | None]:
    path, body, stream = request_for(i)
    start = time.perf_counter()
    try:
        if stream:
            async with client.stream("POST", path, json=body) as r:
                text = (await r.aread()).decode()
            ok = r.status_code == 200 and text.endswith("data: [DONE]\n\n") and '"error"' not in text
            return time.perf_counter() - start, None if ok else f"stream {r.status_code}: {text[-200:]}"
        r = await client.post(path, json=body)
        return time.perf_counter() - start, None if r.status_code == 200 else f"{r.status_code}: {r.text[:200]}"
    except httpx.HTTPError as err:
        return time.perf_counter() - start, f"{type(err).__name__}: {err}"


async def load(port: int, clients: int, requests: int, deadline_s: float) -> dict:
    todo = iter(range(requests))
    results: dict[int, tuple[float, str | None]] = {}

    async def client_loop(client):
        for i in todo:
            results[i] = await one(client, i)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=150, limits=limits) as client:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(client_loop(client) for _ in range(clients))), deadline_s)
        except TimeoutError:
            pass
        wall = time.perf_counter() - start
    latencies = sorted(t for t, _ in results.values())
    errors = [e for _, e in results.values() if e]
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"requests": requests, "answered": len(results), "lost": requests - len(results), "errors": len(errors),
            "first_error": errors[0] if errors else None, "wall_s": wall, "throughput": len(results) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * q[18]}


def report(rows: dict[int, dict], args) -> str:
    lines = ["# Serving under load (`benchmarks/bench_serve_load.py`)", "",
             f"{args.clients} concurrent clients, {args.requests} requests per run, {args.max_new_tokens} new tokens, "
             f"server `sepit serve` on {HOST} (CPU, {os.cpu_count()} cores visible, {platform.python_version()}), "
             f"model: {args.model or 'tiny random SEPIT (tests/model/tiny_sepit.py)'}.",
             "Mix: /v1/ask open and closed-set (yes/no, scored), /v1/chat/completions, every 8th request streamed.",
             "", "| max batch | requests | answered | lost | errors | wall s | req/s | p50 ms | p95 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for b, r in rows.items():
        lines.append(f"| {b} | {r['requests']} | {r['answered']} | {r['lost']} | {r['errors']} | {r['wall_s']:.1f} | "
                     f"{r['throughput']:.2f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
    if len(rows) > 1:
        first, last = rows[min(rows)], rows[max(rows)]
        lines += ["", f"Throughput ratio (max batch {max(rows)} / {min(rows)}): "
                      f"{last['throughput'] / first['throughput']:.2f}x"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="sepit model folder (default: a tiny random model)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=160, help=f"requests per run (at most {MAX_REQUESTS})")
    parser.add_argument("--batch-sizes", default="1,8", help="server --max-batch-size values, one run each")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens generated per answer")
    parser.add_argument("--deadline-s", type=float, default=300, help="time limit of one run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.md"), help="markdown report")
    args = parser.parse_args()
    if not 0 < args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be in 1..{MAX_REQUESTS}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else tiny_model(Path(tmp) / "model")
        for b in (int(x) for x in args.batch_sizes.split(",")):
            port = free_port()
            server = start_server(model, port, b, args.max_new_tokens)
            try:
                rows[b] = asyncio.run(load(port, args.clients, args.requests, args.deadline_s))
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(json.dumps({"max_batch": b, **rows[b]}), flush=True)
    text = report(rows, args)
    Path(args.out).write_text(text)
    print(text)
    return 0 if all(r["errors"] == 0 and r["lost"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
