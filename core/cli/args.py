"""Arguments several CLI sub-commands share, written once (this module adds no command)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def run_command(
    sub: Any,
    name: str,
    help: str,
    func: Callable[[argparse.Namespace], int],
    *,
    detach: str | None = None,
) -> argparse.ArgumentParser:
    """Add a sub-command that acts on one run, named by its id.

    Args:
        sub: the CLI's sub-parser collection.
        name: the command's name.
        help: its one-line help.
        func: its handler.
        detach: the help of a ``--detach`` flag, when the command has one.

    Returns:
        The sub-parser, for the command's own further arguments.
    """
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("run", type=int, help="the run's id")
    if detach is not None:
        p.add_argument("--detach", action="store_true", help=detach)
    p.set_defaults(func=func)
    return p


def grouping(p: argparse.ArgumentParser, default_group: str) -> None:
    """Add ``--group`` and ``--alpha``, the comparison's grouping column and significance level.

    Args:
        p: the sub-command's parser.
        default_group: the grouping column when ``--group`` is not given.
    """
    p.add_argument(
        "--group", default=default_group, help=f"grouping column (default: {default_group})"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
