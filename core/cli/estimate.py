"""CLI: forecast a study's time and cost on one platform (or all), with the basis of each number."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from core.backends.base import BACKENDS, Forecast
from core.cli.specs import parse_settings
from core.costs.forecasting import forecast
from core.costs.pricing import fmt_duration, machine_settings, stale_warning
from core.spec import StudySpec
from core.store import Store

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add estimate."""
    p = sub.add_parser(
        "estimate", help="forecast the time and cost of a study on a platform, with its basis"
    )
    p.add_argument("spec", help="a .json or .yaml spec file")
    p.add_argument(
        "--backend", required=True, choices=[*BACKENDS, "all"], help="the platform, or all"
    )
    p.add_argument(
        "--instance", help="machine type (default: the stored setting, else the catalog's)"
    )
    p.add_argument("--region", help="region (default: the stored setting, else the catalog's)")
    p.add_argument("--accelerator", help="accelerator attached to the machine (Vertex N1)")
    p.add_argument("--accelerator-count", type=int, default=None, help="how many (default 1)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another backend setting; stored settings are used for the rest",
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="local: do not time a few training steps when no calibration is stored",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_estimate)


def _settings(store: Any, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = store.settings_with_prefix(f"{backend}.")
    settings.update(parse_settings(args.set))
    for key, value in (
        ("instance_type", args.instance),
        ("region", args.region),
        ("accelerator_type", args.accelerator),
        ("accelerator_count", args.accelerator_count),
    ):
        if value is not None:
            settings[key] = value
    return settings


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def render(fc: Forecast, region: str) -> str:
    """Return a forecast as text: the figures, then the basis sentences."""
    label = BACKENDS.get(fc.backend, fc.backend)
    price = "unknown" if fc.price_per_hour is None else f"${fc.price_per_hour:.4g}/h"
    lines = [
        f"{label} ({fc.instance_type}, {region})",
        f"  expected  {fmt_duration(fc.expected_wall_s)} "
        f"(range {fmt_duration(fc.low_wall_s)} to {fmt_duration(fc.high_wall_s)}), "
        f"{_money(fc.expected_cost_usd)} "
        f"(range {_money(fc.low_cost_usd)} to {_money(fc.high_cost_usd)})",
        "  worst     "
        + (
            "none (no time cap)"
            if fc.worst_wall_s is None
            else f"{fmt_duration(fc.worst_wall_s)}, {_money(fc.worst_cost_usd)}"
        ),
        f"  price     {price}",
        "  basis:",
    ]
    lines += [f"  - {sentence}" for sentence in fc.basis]
    return "\n".join(lines)


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print the forecast of each asked platform with its basis; exit 0."""
    spec = StudySpec.load(args.spec)
    store = Store(args.db)
    names = list(BACKENDS) if args.backend == "all" else [args.backend]
    results = []
    for name in names:
        settings = _settings(store, name, args)
        fc = forecast(name, spec, settings, store, calibrate=not args.no_calibrate)
        results.append((fc, machine_settings(name, settings)["region"]))
    if args.format == "json":
        print(json.dumps([{**fc.to_dict(), "region": r} for fc, r in results], indent=2))
        return 0
    print(
        f"{spec.name}: {spec.budget.max_trials} trials, {spec.budget.parallel_trials} at once, "
        f"{spec.budget.epochs} epochs each, on {spec.dataset.name}"
    )
    for fc, region in results:
        print()
        print(render(fc, region))
    warning = stale_warning(store)
    if warning:
        print()
        print(f"warning: {warning}")
    return 0
