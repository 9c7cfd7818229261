"""`python -m core ...`: the app's operations, scriptable.

Each module in ``core/cli/`` contributes sub-commands through ``register(subparsers)``;
each sub-command sets ``func(args) -> int``. Errors of the CloudTune family are printed as
sentences (exit 2); nothing prints a traceback to a user.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from core.errors import CloudTuneError


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command found in ``core.cli``."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="CloudTune: tune CNN hyperparameters locally or in the cloud, and compare.",
    )
    parser.add_argument(
        "--db",
        help="SQLAlchemy URL of the result store (default: $CLOUDTUNE_DB or a SQLite file "
        "in the per-user data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"core.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (0 ok, 1 a check failed, 2 an error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CloudTuneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
