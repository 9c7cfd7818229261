"""The study spec: dataset, objective, budget, space (StudySpec), sampling and grids."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import SpecError
from core.spec.params import (
    FixedParam,
    FloatParam,
    Param,
    default_params,
)
from core.spec.reading import load_text, read_spec_file

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class DatasetSpec:
    """Which data to train on.

    Attributes:
        name: one of DATASET_NAMES.
        path: a file or folder (required for custom; optional elsewhere).
        subset: keep at most this many training examples (None: all).
        validation_split: fraction of the training data held out for validation.
    """

    name: str = "digits"
    path: str | None = None
    subset: int | None = None
    validation_split: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, leaving out unset options."""
        out: dict[str, Any] = {"name": self.name}
        if self.path is not None:
            out["path"] = self.path
        if self.subset is not None:
            out["subset"] = self.subset
        out["validation_split"] = self.validation_split
        return out


@dataclass(frozen=True)
class Objective:
    """The metric to optimise and its direction ("max" or "min")."""

    metric: str = "val_accuracy"
    goal: str = "max"


@dataclass(frozen=True)
class Budget:
    """How much to spend.

    Attributes:
        max_trials: trials to run in all.
        parallel_trials: trials at once.
        epochs: epochs per trial (the maximum epochs per trial for hyperband).
        max_minutes: stop the run after this many minutes (None: no cap).
        max_cost_usd: stop the run before it spends more than this (None: no cap).
        early_stopping: "none", or "median": stop a trial whose best so far falls below the
            median of the completed trials at the same epoch (each platform's own rule).
    """

    max_trials: int = 10
    parallel_trials: int = 1
    epochs: int = 2
    max_minutes: float | None = None
    max_cost_usd: float | None = None
    early_stopping: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, leaving out unset caps and early stopping when none."""
        out: dict[str, Any] = {
            "max_trials": self.max_trials,
            "parallel_trials": self.parallel_trials,
            "epochs": self.epochs,
        }
        if self.max_minutes is not None:
            out["max_minutes"] = self.max_minutes
        if self.max_cost_usd is not None:
            out["max_cost_usd"] = self.max_cost_usd
        if self.early_stopping != "none":
            out["early_stopping"] = self.early_stopping
        return out


@dataclass(frozen=True)
class StudySpec:
    """A validated tuning study.

    Build with :func:`parse_spec`, :meth:`from_dict`, :meth:`from_text` or :meth:`load`.

    Example:
        >>> spec = StudySpec.load("assets/specs/published_study.json")
        >>> spec.budget.max_trials
        20
    """

    name: str
    space: tuple[Param, ...]
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    strategy: str = "bayesian"
    objective: Objective = field(default_factory=Objective)
    budget: Budget = field(default_factory=Budget)
    seed: int = 42
    model: Mapping[str, Any] = field(default_factory=dict)
    configurations: tuple[Mapping[str, Any], ...] = ()
    """The same-configurations design's drawn configurations (core.spec.design); usually ()."""

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (the format documented in README)."""
        return {
            "name": self.name,
            "dataset": self.dataset.to_dict(),
            "model": dict(self.model),
            "space": [p.to_dict() for p in self.space],
            "strategy": self.strategy,
            "objective": {"metric": self.objective.metric, "goal": self.objective.goal},
            "budget": self.budget.to_dict(),
            "seed": self.seed,
        } | (
            {"configurations": [dict(c) for c in self.configurations]}
            if self.configurations
            else {}
        )

    def to_json(self) -> str:
        """Return the spec as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        """Return the spec as YAML."""
        import yaml  # lazy: the spec also ships inside cloud training containers

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> StudySpec:
        """Validate ``data`` and build a spec; raise SpecError listing every problem."""
        return _parse(data)

    @classmethod
    def from_text(cls, text: str, fmt: Literal["json", "yaml"] | None = None) -> StudySpec:
        """Parse JSON or YAML text (``fmt`` None: JSON when it is JSON, else YAML 1.2)."""
        return _parse(load_text(text, fmt))

    @classmethod
    def load(cls, path: str | Path) -> StudySpec:
        """Read a spec from a .json, .yaml or .yml file (at most 1 MB, UTF-8)."""
        return _parse(read_spec_file(path))

    def save(self, path: str | Path) -> None:
        """Write the spec as JSON or YAML, chosen by the file's extension."""
        p = Path(path)
        text = self.to_yaml() if p.suffix.lower() in (".yaml", ".yml") else self.to_json()
        p.write_text(text, encoding="utf-8")

    # -- the space
    def param(self, name: str) -> Param | None:
        """Return the space's parameter called ``name``, if any."""
        return next((p for p in self.space if p.name == name), None)

    def tuned_params(self) -> list[Param]:
        """Return the parameters that vary (not fixed)."""
        return [p for p in self.space if not isinstance(p, FixedParam)]

    def cardinality(self) -> int | None:
        """Return the number of distinct configurations, or None when the space is continuous."""
        return space_cardinality(self.space)

    def sample(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """Return ``n`` configurations drawn at random (seeded), defaults filled in."""
        return sample_space(self.space, n, self.seed if seed is None else seed)

    def fixed_values(self) -> dict[str, Any]:
        """Return the defaults overridden by the space's fixed parameters."""
        out: dict[str, Any] = default_params()
        out.update({p.name: p.value for p in self.space if isinstance(p, FixedParam)})
        return out


def space_cardinality(space: Sequence[Param]) -> int | None:
    """Return how many distinct configurations ``space`` holds, or None if continuous."""
    total = 1
    for p in space:
        if isinstance(p, FloatParam):
            grid = p.grid_values()
            if grid is None:
                return None
            total *= len(grid)
        else:
            total *= len(p.grid_values())
    return total


def sample_space(space: Sequence[Param], n: int, seed: int) -> list[dict[str, Any]]:
    """Draw ``n`` seeded configurations from ``space``, with defaults for names it omits."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        config: dict[str, Any] = default_params()
        for p in space:
            config[p.name] = p.sample(rng)
        out.append(config)
    return out


def discretise(spec: StudySpec, steps: Mapping[str, float]) -> StudySpec:
    """Return a copy of ``spec`` whose continuous floats get the given grid steps.

    Used by backends whose grid search accepts only finite (categorical) ranges.

    Raises:
        SpecError: when a continuous float has no step in ``steps`` or the result is invalid.
    """
    data = spec.to_dict()
    for item in data["space"]:
        if item["type"] == "float" and "step" not in item:
            if item["name"] not in steps:
                raise SpecError(
                    [
                        f"space.{item['name']}: give a step to turn this continuous range "
                        "into a finite grid."
                    ]
                )
            item["step"] = steps[item["name"]]
    return _parse(data)


def _parse(data: Any) -> StudySpec:
    """``parse_spec(data)``, for the constructors above.

    The one import of this module that waits for its call: ``core.spec.parse`` builds these
    classes, so it imports this module, and this module cannot import it back at its top.
    """
    from core.spec.parse import parse_spec

    return parse_spec(data)
