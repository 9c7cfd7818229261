"""`python -m core report STUDY --out FILE.html`: write a study's meeting report as one HTML file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from core.analysis.report import report_file_name, write_report
from core.cli.args import grouping
from core.store import Store

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``report`` sub-command.

    Args:
        sub: the CLI's sub-parser collection.
    """
    p = sub.add_parser(
        "report",
        help="write a study's meeting report (one self-contained HTML file)",
        description="Write a study's report: setup, time/cost/accuracy charts, the statistics "
        "table with plain-language conclusions, assumption checks, post-hoc comparisons, the "
        "best configuration per platform, forecast against actual and every trial. The file "
        "opens offline in any browser; print it to PDF from there.",
    )
    p.add_argument("study", help="the study's id or name")
    p.add_argument("--out", type=Path, help="the HTML file (default: report-<study>.html)")
    grouping(p, "platform")
    p.add_argument(
        "--reference",
        action="store_true",
        help="add the published study's figures, labelled as a reference (never as measurements)",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report and say where it went.

    Args:
        args: study, out, group, alpha, reference and the global db.

    Returns:
        0 when the file was written.
    """
    store = Store(args.db)
    study = store.get_study(args.study)
    out = args.out or Path(report_file_name(study.name, study.id))
    path = write_report(
        store,
        study.id,
        out,
        group=args.group,
        alpha=args.alpha,
        include_reference=args.reference,
    )
    size_kb = path.stat().st_size / 1024
    print(f"wrote {path} ({size_kb:.0f} KB): open it in a browser; print it to PDF from there.")
    return 0
