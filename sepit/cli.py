"""One entry point: ``sepit <verb>``.

Each module in :mod:`sepit.commands` defines ``register(subparsers)`` that adds one verb (with help for every
option) and sets ``func`` on its parser. Verbs are discovered, so adding a file adds a verb.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sepit import __version__, commands
from sepit.errors import SepitError


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
    try:
        result = args.func(args)
    except SepitError as err:
        print(f"sepit {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sepit {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
