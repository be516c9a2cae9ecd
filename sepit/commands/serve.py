"""``sepit serve``: the HTTP API and web page (docs/serving.md)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from sepit.commands import existing_dir, positive_float, positive_int

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP (OpenAI-compatible API + web page)",
                       description="Serve a SEPIT model: POST /v1/chat/completions (OpenAI-compatible, "
                                   "stream too), POST /v1/ask, GET /v1/models, GET /healthz, the page at /.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, type=existing_dir,
                   help="sepit model folder (stage 1 or 2 output; safetensors)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--api-key", default=os.environ.get("SEPIT_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on /v1/* (default: $SEPIT_API_KEY, else none)")
    p.add_argument("--name", default=None, help="model id shown by /v1/models (default: the folder name)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--max-batch-size", type=positive_int, default=8, help="requests answered together at most")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    p.add_argument("--max-queue", type=positive_int, default=256, help="waiting requests before answering 503")
    p.add_argument("--timeout", type=positive_float, default=60.0,
                   help="per-request timeout in seconds (queueing included); the request's model work then stops")
    p.add_argument("--max-body-mb", type=positive_float, default=8.0, help="request body size limit (MiB)")
    p.add_argument("--max-structure-mb", type=positive_float, default=5.0, help="structure upload size limit (MiB)")
    p.add_argument("--max-structure-unzipped-mb", type=positive_float, default=32.0,
                   help="size limit of a gzipped structure once decompressed (MiB; decompressed in chunks)")
    p.add_argument("--max-sequence-length", type=positive_int, default=1022, help="residues per protein at most")
    p.add_argument("--max-residues", type=positive_int, default=None,
                   help="crop longer proteins to this many residues (default and upper bound: the model's own "
                        "max_residues); responses report the crop")
    p.add_argument("--max-question-chars", type=positive_int, default=2000, help="characters per question")
    p.add_argument("--max-choices", type=positive_int, default=26, help="closed-set options per request")
    p.add_argument("--max-choice-chars", type=positive_int, default=200, help="characters per closed-set option")
    p.add_argument("--max-prompt-tokens", type=positive_int, default=2048,
                   help="LLM tokens of a prompt (protein positions, question, options, longest option)")
    p.add_argument("--max-scoring-tokens", type=positive_int, default=2048,
                   help="rows x tokens of one option-scoring forward (bounds its logits' memory)")
    p.add_argument("--max-new-tokens", type=positive_int, default=512, help="largest max_tokens a request may ask for")
    p.add_argument("--default-new-tokens", type=positive_int, default=128,
                   help="max_tokens when a request gives none")
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
                         max_structure_unzipped_bytes=int(args.max_structure_unzipped_mb * 2**20),
                         max_residues=args.max_residues, max_question_chars=args.max_question_chars,
                         max_choices=args.max_choices, max_choice_chars=args.max_choice_chars,
                         max_prompt_tokens=args.max_prompt_tokens, max_scoring_tokens=args.max_scoring_tokens,
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
    from sepit.errors import reading
    from sepit.serve import create_app

    settings = settings_from_args(args)
    if _public(args.host) and not settings.api_key:
        print(f"sepit serve: warning: binding {args.host} without --api-key; anyone who can reach it may use "
              "the model", file=sys.stderr)
    with reading(f"--model {args.model}"):
        model = Sepit.from_pretrained(args.model, device=args.device, index=args.index)
    app = create_app(model, settings)
    print(f"sepit serve: {settings.model_name} on {model.device}; page at http://{args.host}:{args.port}/",
          file=sys.stderr)
    # Ctrl-C / SIGTERM: stop accepting, give running requests a few seconds, then exit (queued work is dropped)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0
