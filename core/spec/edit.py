"""Small helpers of the search-space editor: new parameters, value lists, grid sizes, advice."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from core.spec import KNOWN_PARAMS, FloatParam, IntParam, Param

log = logging.getLogger(__name__)

WIDE_RANGE = 100.0
"""A linear range whose maximum is this many times its minimum spans two decades or more."""

_NEW: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "min": 0.0001, "max": 0.01, "scale": "log"},
    "batch_size": {"type": "choice", "values": [32, 64, 128]},
    "dropout_rate": {"type": "float", "min": 0.1, "max": 0.5, "scale": "linear"},
    "optimizer": {"type": "choice", "values": ["adam", "sgd", "rmsprop"]},
    "conv_blocks": {"type": "int", "min": 1, "max": 3, "step": 1, "scale": "linear"},
    "filters": {"type": "choice", "values": [16, 32, 64]},
    "dense_units": {"type": "choice", "values": [32, 64, 128]},
    "kernel_size": {"type": "choice", "values": [3, 5]},
}


def new_param(name: str) -> dict[str, Any]:
    """Return a sensible starting range for a tunable name."""
    if name not in KNOWN_PARAMS:
        raise KeyError(name)
    return {"name": name, **_NEW.get(name, {"type": "fixed", "value": KNOWN_PARAMS[name].default})}


def parse_values(text: str) -> list[Any]:
    """Turn '32, 64, 1e-3, adam' into [32, 64, 0.001, 'adam']."""
    out: list[Any] = []
    for part in text.split(","):
        token = part.strip()
        if not token:
            continue
        try:
            number = float(token)
        except ValueError:
            out.append(token)
            continue
        is_int = number.is_integer() and "." not in token and "e" not in token.lower()
        out.append(int(number) if is_int else number)
    return out


def values_text(values: Iterable[Any]) -> str:
    """Inverse of :func:`parse_values`."""
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def points_label(param: Param) -> str:
    """Return how many grid points a parameter has, or 'continuous'."""
    if isinstance(param, FloatParam) and param.grid_values() is None:
        return f"continuous ({param.scale})"
    return str(len(param.grid_values() or []))


def range_advice(space: Iterable[Param]) -> dict[str, str]:
    """Say, per parameter, when a linear range spans two decades or more; a log scale would not.

    On a linear scale from 0.001 to 0.1, 91% of the range is 0.01 or more: random, Bayesian and
    hyperband searches spend most trials on large values and few on the lowest decade, often
    where a learning rate works best. This is advice, not a problem: such a spec still runs
    (the published study's learning_rate is one).

    Args:
        space: the spec's parameters.

    Returns:
        {parameter name: a sentence}, only for the parameters that deserve one.
    """
    out: dict[str, str] = {}
    for p in space:
        if not isinstance(p, FloatParam | IntParam) or p.scale != "linear" or p.min <= 0:
            continue
        if p.max < WIDE_RANGE * p.min:
            continue
        top = p.max / 10
        share = (p.max - top) / (p.max - p.min)
        out[p.name] = (
            f"{p.name} spans {p.min:g} to {p.max:g} on a linear scale: {share:.0%} of that "
            f"range is {top:g} or more, so few trials will try values between {p.min:g} and "
            f"{p.min * 10:g}. A log scale gives each tenfold step an equal share: set its "
            "scale to log."
        )
    return out
