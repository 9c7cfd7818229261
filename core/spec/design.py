"""The fair platform benchmark: the same N configurations, with the same seeds, on every platform.

A study run with each service's own search lets every platform draw its own configurations,
so a platform effect cannot be told from search luck. This design draws N configurations
once, seeded, from the space, and every platform trains exactly those N:

* The spec keeps the drawn configurations in ``configurations`` and its space becomes one
  choice parameter, ``config_index``, with the values 0 .. N-1 (plus the space's fixed
  values), under the grid strategy with ``max_trials = N``. Every service's own grid tuner
  (SageMaker's Grid, Vertex AI's GRID_SEARCH, Azure ML's grid sampling, KerasTuner's
  GridSearch) then runs each index exactly once; nothing platform-specific is needed.
* The trainer maps the index back to its configuration (:func:`configuration`), from the
  ``configurations.json`` shipped in the bundle, and trains it with the seed
  ``seed + config_index``: the same configuration gets the same seed everywhere, whatever
  order a service runs the trials in.
* The analysis treats the design as it is: a blocked comparison with the configuration as the
  block (:mod:`core.analysis.blocked`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import SpecError
from core.spec.params import ChoiceParam, FixedParam
from core.spec.study import StudySpec, sample_space

log = logging.getLogger(__name__)

CONFIG_INDEX = "config_index"
"""The one tuned parameter of a same-configurations study: which configuration a trial trains."""
CONFIGURATIONS_FILE = "configurations.json"
"""The bundle file the trainer reads the configurations from."""
MAX_CONFIGURATIONS = 500
_DRAWS_PER_CONFIGURATION = 20  # draws tried per configuration before a small space gives up


def is_same_configurations(spec: StudySpec) -> bool:
    """True for a study that trains the same drawn configurations on every platform."""
    return bool(spec.configurations)


def same_configurations(spec: StudySpec, n: int) -> StudySpec:
    """Draw ``n`` distinct configurations from ``spec``'s space, seeded, and fix them.

    Args:
        spec: The study; its seed seeds the draw, so the same spec draws the same N.
        n: How many configurations every platform trains (2 to MAX_CONFIGURATIONS).

    Returns:
        The same-configurations spec: ``configurations`` holds the draws (the tuned
        parameters only), the space is ``config_index`` plus the fixed parameters, the
        strategy is grid and ``budget.max_trials`` is ``n``.

    Raises:
        SpecError: n is out of range, the space has nothing to tune, or it holds fewer than
            n distinct configurations.
    """
    if is_same_configurations(spec):
        return spec
    if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= MAX_CONFIGURATIONS:
        raise SpecError(
            [
                f"configurations: the number of configurations must be a whole number from 2 "
                f"to {MAX_CONFIGURATIONS} (got {n!r})."
            ]
        )
    tuned = spec.tuned_params()
    if not tuned:
        raise SpecError(["configurations: the space fixes every parameter; tune at least one."])
    size = spec.cardinality()
    if size is not None and size < n:
        raise SpecError(
            [
                f"configurations: the space holds {size} distinct configurations, fewer than "
                f"the {n} asked for; ask for at most {size} or widen the space."
            ]
        )
    names = [p.name for p in tuned]
    drawn: list[dict[str, Any]] = []
    seen: set[str] = set()
    for config in sample_space(tuned, n * _DRAWS_PER_CONFIGURATION, spec.seed):
        point = {name: _short(config[name]) for name in names}
        key = json.dumps(point, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            drawn.append(point)
        if len(drawn) == n:
            break
    if len(drawn) < n:
        raise SpecError(
            [
                f"configurations: only {len(drawn)} distinct configurations could be drawn "
                f"from the space; ask for at most {len(drawn)} or widen the space."
            ]
        )
    fixed = tuple(p for p in spec.space if isinstance(p, FixedParam))
    return dataclasses.replace(
        spec,
        space=(ChoiceParam(CONFIG_INDEX, tuple(range(n))), *fixed),
        strategy="grid",
        budget=dataclasses.replace(spec.budget, max_trials=n),
        configurations=tuple(drawn),
    )


def configuration(
    configurations: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Replace a trial's ``config_index`` by the configuration it names.

    Args:
        configurations: The study's drawn configurations.
        values: A trial's parameter values (as the service handed them).

    Returns:
        ``values`` without ``config_index`` and with the configuration's values; unchanged
        when there is no index.

    Raises:
        ValueError: The index is not a whole number in range.
    """
    if CONFIG_INDEX not in values:
        return dict(values)
    index = config_index(values)
    if index is None or not 0 <= index < len(configurations):
        raise ValueError(
            f"{CONFIG_INDEX} {values[CONFIG_INDEX]!r} names no configuration; this study has "
            f"{len(configurations)} (0 to {len(configurations) - 1})."
        )
    out = {k: v for k, v in values.items() if k != CONFIG_INDEX}
    out.update(configurations[index])
    return out


def config_index(values: Mapping[str, Any]) -> int | None:
    """The configuration index of a trial's parameters ("3", 3.0 and 3 alike), else None."""
    raw = values.get(CONFIG_INDEX)
    try:
        number = float(str(raw).strip().strip('"'))
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def recorded_params(spec: StudySpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a trial is stored with: its ``config_index`` and that configuration.

    The index is the block of the blocked comparison; the values make the trial readable in
    tables and charts like any other. Other studies' values are returned unchanged.
    """
    index = config_index(values) if spec.configurations else None
    if index is None or not 0 <= index < len(spec.configurations):
        return dict(values)
    return {**values, CONFIG_INDEX: index, **spec.configurations[index]}


def _short(value: Any) -> Any:
    """A drawn float to 6 significant digits: the configurations travel as one argument."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def configurations_argument(spec: StudySpec) -> str | None:
    """The trainer's ``--configurations`` value: the configurations as compact JSON, or None.

    Every cloud passes it as a static argument (SageMaker's static hyperparameters, Vertex
    AI's container arguments, Azure ML's command line), so the one image or package serves
    every study; the trainer maps ``--config_index`` through it.
    """
    if not spec.configurations:
        return None
    return json.dumps([dict(c) for c in spec.configurations], separators=(",", ":"))
