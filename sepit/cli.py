"""One entry point: ``sepit <verb>``.

Each module in :mod:`sepit.commands` defines ``register(subparsers)`` that adds one verb (with help for every
option) and sets ``func`` on its parser. Verbs are discovered, so adding a file adds a verb.

User-caused failures end as one line ``sepit <verb>: error: <what and where>`` with exit code 2: bad option
values (argparse types in :mod:`sepit.commands`), :class:`SepitError`, and, as a last resort at this boundary,
the low-level read errors of :func:`sepit.errors.read_errors` (missing file, truncated gzip or safetensors).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sepit import __version__, commands
from sepit.errors import SepitError, describe_read_error, read_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepit",
        description="Structure-enhanced protein instruction tuning: build data, train, ask, evaluate, serve.",
    )
    parser.add_argument("--version", action="version", version=f"sepit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"sepit.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    verb = " ".join(p for p in (args.verb, getattr(args, "data_verb", None), getattr(args, "kind", None)) if p)
    try:
        result = args.func(args)
    except SepitError as err:
        print(f"sepit {verb}: error: {err}", file=sys.stderr)
        return 2
    except read_errors() as err:  # a user's file that commands did not wrap: still no traceback
        print(f"sepit {verb}: error: {describe_read_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sepit {verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
