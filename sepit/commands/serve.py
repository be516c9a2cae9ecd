"""``sepit serve``: the HTTP API and web page (docs/serving.md)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP (OpenAI-compatible API + web page)",
                       description="Serve a SEPIT model: POST /v1/chat/completions (OpenAI-compatible, "
                                   "stream too), POST /v1/ask, GET /v1/models, GET /healthz, the page at /.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="sepit model folder (stage 1 or 2 output; safetensors)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--api-key", default=os.environ.get("SEPIT_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on /v1/* (default: $SEPIT_API_KEY, else none)")
    p.add_argument("--name", default=None, help="model id shown by /v1/models (default: the folder name)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--max-batch-size", type=int, default=8, help="requests answered together at most")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests before answering 503")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds (queueing included)")
    p.add_argument("--max-body-mb", type=float, default=8.0, help="request body size limit (MiB)")
    p.add_argument("--max-structure-mb", type=float, default=5.0, help="structure file size limit (MiB)")
    p.add_argument("--max-sequence-length", type=int, default=1022, help="residues per protein at most")
    p.add_argument("--max-new-tokens", type=int, default=512, help="largest max_tokens a request may ask for")
    p.add_argument("--default-new-tokens", type=int, default=128, help="max_tokens when a request gives none")
    p.add_argument("--log-level", default="info", help="uvicorn log level")
    p.add_argument("--index", default=None, help="reference index (sepit index build): answers carry evidence "
                                                 "(annotated homologs) and checked citations")
    p.set_defaults(func=run)


def settings_from_args(args):
    from pathlib import Path

    from sepit.serve import ServeSettings

    return ServeSettings(model_name=args.name or Path(args.model).resolve().name, api_key=args.api_key or None,
                         max_body_bytes=int(args.max_body_mb * 2**20),
                         max_structure_bytes=int(args.max_structure_mb * 2**20),
                         max_sequence_length=args.max_sequence_length, max_new_tokens=args.max_new_tokens,
                         default_max_new_tokens=args.default_new_tokens, max_batch_size=args.max_batch_size,
                         batch_wait_ms=args.batch_wait_ms, max_queue=args.max_queue, request_timeout_s=args.timeout)


def _public(host: str) -> bool:
    if host in LOOPBACK:
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def run(args) -> int:
    import uvicorn

    from sepit.api import Sepit
    from sepit.serve import create_app

    settings = settings_from_args(args)
    if _public(args.host) and not settings.api_key:
        print(f"sepit serve: warning: binding {args.host} without --api-key; anyone who can reach it may use "
              "the model", file=sys.stderr)
    model = Sepit.from_pretrained(args.model, device=args.device,
                                  max_residues=settings.max_sequence_length, index=args.index)
    app = create_app(model, settings)
    print(f"sepit serve: {settings.model_name} on {model.device}; page at http://{args.host}:{args.port}/",
          file=sys.stderr)
    # Ctrl-C / SIGTERM: stop accepting, give running requests a few seconds, then exit (queued work is dropped)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0
