"""Choosing runs to compare: runs with trials, default picks, spec differences, study names.

Compare, Present and the report compare any set of runs, from one study or several. This module
says which runs can be picked, which are picked by default (the newest study that has trials),
what differs between the chosen runs' specs and whether they can be compared at all.

Example:
    >>> runs = selectable_runs(store)                          # doctest: +SKIP
    >>> diff = spec_differences(runs[:2])                      # doctest: +SKIP
    >>> diff.comparable, diff.lines                            # doctest: +SKIP
    (True, ['Strategy: random (run 1), hyperband (run 2).'])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.backends.platforms import platform_label
from core.store import RunRow, Store
from core.store.frames import trial_counts

log = logging.getLogger(__name__)

BLOCKING_FIELDS = ("dataset", "objective")
"""Spec fields whose difference makes runs not comparable (different data or target)."""


# ----------------------------------------------------------------------------- picking runs


def selectable_runs(store: Store) -> list[RunRow]:
    """Every run that has at least one trial, newest first, from every study."""
    counts = trial_counts(store)
    return [r for r in store.list_runs() if counts.get(r.id)]


def newest_study_with_trials(store: Store) -> int | None:
    """The id of the newest study that has a run with trials (None when none has)."""
    runs = selectable_runs(store)
    return max((r.study_id for r in runs), default=None)


def default_run_ids(store: Store, study_id: int | None = None) -> list[int]:
    """The runs picked when nothing is chosen yet: those with trials of ``study_id`` (default:
    the newest study that has trials), oldest first."""
    runs = selectable_runs(store)
    study = study_id if study_id is not None else max((r.study_id for r in runs), default=None)
    return sorted(r.id for r in runs if r.study_id == study)


def run_label(run: RunRow, study_names: Mapping[int, str] | None = None) -> str:
    """How a run is named in pickers: "Run 3 · Local · random · study 2 (name)"."""
    name = (study_names or {}).get(run.study_id)
    study = f"study {run.study_id}" + (f" ({name})" if name else "")
    strategy = str(run.spec.get("strategy", "?"))
    return f"Run {run.id} · {platform_label(run.backend)} · {strategy} · {study}"


# ----------------------------------------------------------------------------- spec differences


def _dataset_text(spec: Mapping[str, Any]) -> str:
    ds = spec.get("dataset") or {}
    bits = [str(ds.get("name", "?"))]
    if ds.get("subset"):
        bits.append(f"first {ds['subset']} examples")
    if ds.get("validation_split") is not None:
        bits.append(f"{float(ds['validation_split']):.0%} validation")
    if ds.get("path"):
        bits.append(f"from {ds['path']}")
    return ", ".join(bits)


def _space_text(spec: Mapping[str, Any]) -> str:
    parts = []
    for p in spec.get("space") or []:
        kind = p.get("type")
        if kind in ("float", "int"):
            what = f"{p.get('min')}–{p.get('max')}"
            if p.get("scale", "linear") != "linear":
                what += f" {p['scale']}"
            if p.get("step") is not None:
                what += f" step {p['step']}"
        elif kind == "choice":
            what = "{" + ", ".join(str(v) for v in p.get("values", [])) + "}"
        else:
            what = f"= {p.get('value')}"
        parts.append(f"{p.get('name')} {what}")
    return "; ".join(parts) or "(empty)"


def budget_text(spec: Mapping[str, Any]) -> str:
    """ "20 trials, 3 at a time, 3 epochs each; stop after 30 min"."""
    b = spec.get("budget") or {}
    epochs = b.get("epochs", "?")
    text = (
        f"{b.get('max_trials', '?')} trials, {b.get('parallel_trials', 1)} at a time, "
        f"{epochs} epoch{'' if epochs == 1 else 's'} each"
    )
    caps = []
    if b.get("max_minutes") is not None:
        caps.append(f"stop after {b['max_minutes']:g} min")
    if b.get("max_cost_usd") is not None:
        caps.append(f"stop before ${b['max_cost_usd']:g}")
    return text + (f"; {', '.join(caps)}" if caps else "")


SPEC_FIELDS: dict[str, Any] = {
    "Dataset": ("dataset", _dataset_text),
    "Objective": (
        "objective",
        lambda s: (
            f"{(s.get('objective') or {}).get('goal', 'max')}imise "
            f"{(s.get('objective') or {}).get('metric', 'val_accuracy')}"
        ),
    ),
    "Strategy": ("strategy", lambda s: str(s.get("strategy", "?"))),
    "Search space": ("space", _space_text),
    "Budget": ("budget", lambda s: budget_text(s)),
    "Model": ("model", lambda s: str(dict(s["model"])) if s.get("model") else "default"),
    "Seed": ("seed", lambda s: str(s.get("seed", "–"))),
}
"""What a spec difference is called, the key it is known by, and how its value is written."""


@dataclass
class SpecDiff:
    """What differs between the specs of the chosen runs.

    Attributes:
        same: (label, value) of every field all runs share.
        differs: (label, key, {value: [run ids]}) of every field that differs.
        warnings: a sentence per difference that makes the runs not comparable.
    """

    same: list[tuple[str, str]] = field(default_factory=list)
    differs: list[tuple[str, str, dict[str, list[int]]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        """False when the runs differ in dataset or objective."""
        return not self.warnings

    @property
    def lines(self) -> list[str]:
        """A plain sentence per difference: "Strategy: random (run 1), hyperband (run 2)."."""
        return [f"{label}: {values_text(values)}." for label, _key, values in self.differs]

    def differs_in(self, key: str) -> bool:
        """True when the runs differ in the field known as ``key`` (e.g. "strategy")."""
        return any(k == key for _label, k, _v in self.differs)


def values_text(values: Mapping[str, Sequence[int]]) -> str:
    def runs(ids: Sequence[int]) -> str:
        return ("run " if len(ids) == 1 else "runs ") + ", ".join(str(i) for i in ids)

    return "; ".join(f"{value} ({runs(ids)})" for value, ids in values.items())


def spec_differences(runs: Iterable[RunRow]) -> SpecDiff:
    """Compare the specs of ``runs``, field by field.

    Args:
        runs: the chosen runs (their own specs, which may come from different studies).

    Returns:
        The shared fields, the differing ones (with which run has which value) and a warning
        for each difference that makes a comparison meaningless (dataset, objective).
    """
    chosen = sorted(runs, key=lambda r: r.id)
    out = SpecDiff()
    for label, (key, text) in SPEC_FIELDS.items():
        values: dict[str, list[int]] = {}
        for run in chosen:
            values.setdefault(text(run.spec), []).append(run.id)
        if len(values) <= 1:
            if values:
                out.same.append((label, next(iter(values))))
            continue
        out.differs.append((label, key, values))
        if key in BLOCKING_FIELDS:
            out.warnings.append(
                f"Not comparable: the runs use a different {label.lower()} "
                f"({values_text(values)}), so their accuracy, time and cost measure different "
                "things; pick runs with the same one."
            )
    return out


# ----------------------------------------------------------------------------- bayesian warm-up


def bayesian_warmup(spec: Mapping[str, Any]) -> int:
    """The random trials KerasTuner's Bayesian oracle runs before it models anything.

    ``BayesianOptimizationOracle`` (keras_tuner 1.4.8, src/tuners/bayesian.py) draws random
    configurations while fewer than ``num_initial_points or max(3 * dimensions, 3)`` trials have
    completed, ``dimensions`` being the number of hyperparameters in its space (one per spec
    parameter, fixed ones included); CloudTune leaves ``num_initial_points`` at its default.
    """
    return max(3 * len(spec.get("space") or []), 3)


def warmup_warning(spec: Mapping[str, Any], trials: int | None = None) -> str | None:
    """A sentence when a Bayesian run's budget is within its random warm-up, else None.

    Args:
        spec: the run's spec (a dict).
        trials: the trial count to judge (default: the spec's max_trials).
    """
    if spec.get("strategy") != "bayesian":
        return None
    warmup = bayesian_warmup(spec)
    n = int(trials if trials is not None else (spec.get("budget") or {}).get("max_trials", 0))
    if n > warmup:
        return None
    return (
        f"Bayesian optimisation starts with {warmup} random trials (3 × the "
        f"{len(spec.get('space') or [])} parameters, KerasTuner's default), so a run of {n} "
        f"trial{'s' if n != 1 else ''} is a random search; give it more than {warmup} trials "
        "for the model to guide the search."
    )


def warmup_warnings(runs: Iterable[RunRow]) -> list[str]:
    """The warm-up sentence of every chosen Bayesian run whose trials all fell in it."""
    out = []
    for run in runs:
        text = warmup_warning(run.spec, run.max_trials)
        if text:
            out.append(f"Run {run.id}: {text}")
    return out


# ----------------------------------------------------------------------------- study names


def default_study_name(base: str, existing: Iterable[str], today: date | None = None) -> str:
    """A new study's readable, unique name: "<base> 2025-01-31 #2".

    Args:
        base: the preset's or draft's name ("published-study").
        existing: the names already in the store.
        today: the date to use (default: today).

    Returns:
        ``base`` with the date and the first number not yet taken that day.
    """
    stem = re.sub(r"\s+\d{4}-\d{2}-\d{2} #\d+$", "", base.strip()) or "study"
    stem = f"{stem} {(today or date.today()).isoformat()}"
    taken = set(existing)
    n = 1
    while f"{stem} #{n}" in taken:
        n += 1
    return f"{stem} #{n}"
