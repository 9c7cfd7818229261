"""`python -m core anova`: compare groups of trials from a CSV file and print the study's table."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from core.analysis.stats import StatsError, compare
from core.cli.args import grouping

if TYPE_CHECKING:
    import pandas as pd

    from core.analysis.stats import Comparison

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``anova`` sub-command.

    Args:
        subparsers: The CLI's sub-parser collection.
    """
    p = subparsers.add_parser(
        "anova",
        help="compare platforms (or strategies...) with ANOVA and friends",
        description="Compare groups of trials in a per-trial CSV: one-way ANOVA, Welch, "
        "Kruskal-Wallis, assumption checks and post-hoc tests, printed as the study's table "
        "(Analysis | F-statistic (df) | p-value | Conclusion).",
    )
    p.add_argument("file", type=Path, help="CSV file, one row a trial")
    p.add_argument(
        "--value",
        required=True,
        help="metric column(s), comma-separated, e.g. duration_s,cost_usd,objective",
    )
    grouping(p, "backend")
    p.add_argument("--factor", help="second factor for a two-way ANOVA, e.g. strategy")
    p.add_argument("--block", help="blocking column, e.g. seed")
    p.add_argument("--json", action="store_true", help="print every number as JSON instead")
    p.add_argument("--details", action="store_true", help="also print descriptives and post-hoc")
    p.add_argument("--out", type=Path, help="also write the table to this CSV file")
    p.set_defaults(func=handle)


def _read(path: Path) -> pd.DataFrame:
    """Read the CSV or raise a StatsError that says what is wrong with the file."""
    import pandas as pd

    if not path.is_file():
        raise StatsError(f"File '{path}' does not exist; give the path of a per-trial CSV file.")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise StatsError(f"File '{path}' is empty; export some trials first.") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise StatsError(f"File '{path}' is not a readable CSV file ({err}).") from err


def _print_text(result: Comparison, details: bool) -> None:
    """The table, then the conclusions, the reasons for each test and any warnings."""
    print(result.table().to_string(index=False))
    print()
    for sentence in result.conclusions():
        print(f"- {sentence}")
    for m in result.metrics.values():
        if m.choice_reason:
            print(f"  {m.info.name}: {m.choice_reason}")
    for warning in result.warnings:
        print(f"note: {warning}")
    if details:
        print()
        print(result.descriptives().to_string(index=False))
        for m in result.metrics.values():
            if m.posthoc is not None:
                print(f"\n{m.info.name}: {m.posthoc_name}")
                print(m.posthoc.to_string(index=False))


def handle(args: argparse.Namespace) -> int:
    """Run the comparison and print it.

    Args:
        args: Parsed arguments (file, value, group, alpha, factor, block, json, details, out).

    Returns:
        0 on success.

    Raises:
        StatsError: The file or the options cannot be used; the CLI prints the sentence.
    """
    metrics = [v.strip() for v in args.value.split(",") if v.strip()]
    df = _read(args.file)
    result = compare(
        df, metrics, group=args.group, alpha=args.alpha, block=args.block, second_factor=args.factor
    )
    if args.out:
        result.table().to_csv(args.out, index=False)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_text(result, args.details)
    return 0
