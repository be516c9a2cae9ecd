"""CLI verbs. Each module defines ``register(subparsers)``; see :mod:`sepit.cli`."""
