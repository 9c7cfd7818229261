"""CLI: validate a spec, show its space, preview or export a cloud request."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from core.backends.base import get_backend
from core.errors import SpecError
from core.spec import StudySpec, parse_spec, read_spec_file, spec_problems
from core.spec.edit import range_advice
from core.store import Store

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add validate, space and spec."""
    p = sub.add_parser("validate", help="check a study spec and list every problem")
    p.add_argument("spec", help="a .json or .yaml spec file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("space", help="cardinality of a spec's space and a sample of configurations")
    p.add_argument("spec")
    p.add_argument("-n", type=int, default=5, help="configurations to sample (default 5)")
    p.add_argument("--seed", type=int, help="sampling seed (default: the spec's)")
    p.set_defaults(func=cmd_space)

    p = sub.add_parser(
        "spec", help="print the exact request a cloud backend would receive for a spec"
    )
    p.add_argument("spec")
    p.add_argument("--backend", required=True, choices=["sagemaker", "vertex", "azure"])
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend setting (region, bucket, role_arn, instance_type, ...); "
        "stored settings are used for the rest",
    )
    p.add_argument("--bundle", metavar="DIR", help="also write request + trainer to DIR")
    p.set_defaults(func=cmd_spec)


def cmd_validate(args: argparse.Namespace) -> int:
    """Print 'ok' or every problem; exit 1 when there are problems."""
    data = read_spec_file(args.spec)
    problems = spec_problems(data)
    if not problems:
        spec = parse_spec(data)
        card = spec.cardinality()
        size = "continuous" if card is None else f"{card} configurations"
        print(f"ok: {spec.name} ({spec.strategy}, {spec.budget.max_trials} trials, space {size})")
        for sentence in range_advice(spec.space).values():
            print(f"note: {sentence}")
        return 0
    print(f"{args.spec}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
    for p in problems:
        print(f"- {p.message}")
    return 1


def cmd_space(args: argparse.Namespace) -> int:
    """Print the cardinality and a seeded sample."""
    spec = StudySpec.load(args.spec)
    card = spec.cardinality()
    print(
        "space: continuous (infinitely many configurations)"
        if card is None
        else f"space: {card} configurations"
    )
    for p in spec.space:
        print(f"  {p.name}: {json.dumps(p.to_dict())}")
    print(f"sample of {args.n}:")
    for config in spec.sample(args.n, args.seed):
        tuned = {p.name: config[p.name] for p in spec.space}
        print("  " + json.dumps(tuned, default=str))
    return 0


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """Turn KEY=VALUE pairs into a dict (values read as JSON when they parse).

    Used by every command that takes ``--set``.

    Raises:
        SpecError: a pair has no ``=`` or no key.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError([f"--set {pair!r}: write it as KEY=VALUE, e.g. region=us-east-1."])
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def cmd_spec(args: argparse.Namespace) -> int:
    """Print the exact cloud request (and optionally export a bundle)."""
    spec = StudySpec.load(args.spec)
    store = Store(args.db)
    settings = store.settings_with_prefix(f"{args.backend}.")
    settings.update(parse_settings(args.set))
    backend: Any = get_backend(args.backend, store)
    print(backend.preview(spec, settings))
    if args.bundle:
        where = backend.export_bundle(spec, settings, args.bundle)
        print(f"bundle written to {where}")
    return 0
