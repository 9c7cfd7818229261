"""The study spec: search space, strategy, objective and budget, validated, in JSON and YAML.

A :class:`StudySpec` is the single source of truth that every backend translates. It is built
only through :func:`parse_spec` (or ``StudySpec.from_dict``), which reports every problem at
once, each as a sentence naming the field and the fix, so an invalid spec never reaches a
backend.

Example:
    >>> spec = parse_spec({"name": "demo", "space": [
    ...     {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1}]})
    >>> spec.cardinality() is None   # a continuous space
    True
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from core.errors import SpecError

STRATEGIES: tuple[str, ...] = ("grid", "random", "bayesian", "hyperband")
GOALS: tuple[str, ...] = ("max", "min")
METRICS: dict[str, str] = {
    "val_accuracy": "max",
    "val_loss": "min",
    "accuracy": "max",
    "loss": "min",
}
DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion_mnist", "cifar10", "custom")
PARAM_TYPES: tuple[str, ...] = ("float", "int", "choice", "fixed")
SCALES: tuple[str, ...] = ("linear", "log")
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")
MODEL_OPTIONS: dict[str, Any] = {"batch_norm": True}

_GOAL_ALIASES = {
    "max": "max",
    "maximize": "max",
    "maximise": "max",
    "min": "min",
    "minimize": "min",
    "minimise": "min",
}


@dataclass(frozen=True)
class ParamInfo:
    """What the CNN accepts for one tunable name.

    Attributes:
        name: the hyperparameter's name.
        kind: "float", "int" or "str": the type of its values.
        default: the value used when the space does not mention it.
        lo: smallest allowed value (numbers only).
        hi: largest allowed value (numbers only).
        values: the allowed values (strings only).
        description: one line for the UI.
        unit: a unit for display, or "".
    """

    name: str
    kind: Literal["float", "int", "str"]
    default: float | int | str
    lo: float | None = None
    hi: float | None = None
    values: tuple[str, ...] = ()
    description: str = ""
    unit: str = ""


KNOWN_PARAMS: dict[str, ParamInfo] = {
    p.name: p
    for p in (
        ParamInfo("learning_rate", "float", 1e-3, 1e-7, 10.0, description="Optimizer step size"),
        ParamInfo("batch_size", "int", 64, 1, 8192, description="Examples per gradient step"),
        ParamInfo(
            "dropout_rate",
            "float",
            0.25,
            0.0,
            0.95,
            description="Dropout before and after the dense head",
        ),
        ParamInfo("optimizer", "str", "adam", values=OPTIMIZERS, description="Optimizer"),
        ParamInfo("conv_blocks", "int", 2, 1, 6, description="Conv + BN + ReLU + pool blocks"),
        ParamInfo("filters", "int", 32, 1, 1024, description="Filters of the first block"),
        ParamInfo("dense_units", "int", 64, 1, 8192, description="Units of the dense head"),
        ParamInfo("kernel_size", "int", 3, 1, 11, description="Convolution kernel size"),
    )
}


def default_params() -> dict[str, float | int | str]:
    """Return the CNN's default value for every tunable name."""
    return {name: info.default for name, info in KNOWN_PARAMS.items()}


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class FloatParam:
    """A real-valued range, linear or log, optionally on a grid of ``step``."""

    name: str
    min: float
    max: float
    scale: str = "linear"
    step: float | None = None
    type: Literal["float"] = "float"

    def grid_values(self) -> list[float] | None:
        """Return the finite grid (min, min+step, ... <= max), or None when continuous."""
        if self.step is None:
            return None
        n = int(math.floor((self.max - self.min) / self.step + 1e-9)) + 1
        return [round(self.min + i * self.step, 12) for i in range(n)]

    def sample(self, rng: random.Random) -> float:
        """Draw one value at random (uniform on the parameter's scale)."""
        grid = self.grid_values()
        if grid is not None:
            return rng.choice(grid)
        if self.scale == "log":
            return math.exp(rng.uniform(math.log(self.min), math.log(self.max)))
        return rng.uniform(self.min, self.max)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        out: dict[str, Any] = {"name": self.name, "type": "float", "min": self.min}
        out["max"] = self.max
        out["scale"] = self.scale
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class IntParam:
    """An integer range with a step (default 1), linear or log."""

    name: str
    min: int
    max: int
    step: int = 1
    scale: str = "linear"
    type: Literal["int"] = "int"

    def grid_values(self) -> list[int]:
        """Return every value of the range."""
        return list(range(self.min, self.max + 1, self.step))

    def sample(self, rng: random.Random) -> int:
        """Draw one value at random."""
        if self.scale == "log" and self.step == 1:
            return int(round(math.exp(rng.uniform(math.log(self.min), math.log(self.max)))))
        return rng.choice(self.grid_values())

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "name": self.name,
            "type": "int",
            "min": self.min,
            "max": self.max,
            "step": self.step,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class ChoiceParam:
    """A finite list of numbers or strings."""

    name: str
    values: tuple[Any, ...]
    type: Literal["choice"] = "choice"

    def grid_values(self) -> list[Any]:
        """Return the values."""
        return list(self.values)

    def sample(self, rng: random.Random) -> Any:
        """Draw one value at random."""
        return rng.choice(self.values)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"name": self.name, "type": "choice", "values": list(self.values)}


@dataclass(frozen=True)
class FixedParam:
    """One value, not tuned."""

    name: str
    value: Any
    type: Literal["fixed"] = "fixed"

    def grid_values(self) -> list[Any]:
        """Return the single value."""
        return [self.value]

    def sample(self, rng: random.Random) -> Any:
        """Return the value."""
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"name": self.name, "type": "fixed", "value": self.value}


Param = FloatParam | IntParam | ChoiceParam | FixedParam


def typed_value(
    name: str, value: Any, param: Param | None = None, *, kind: str | None = None
) -> Any:
    """Return a parameter value that came back from a cloud service, with its type restored.

    Services hand values back as text (SageMaker, MLflow on Azure ML) or as floats (Vertex
    AI). In order: a fixed ``param``'s own value (the spec fixed it, whatever was logged); the
    ``param`` choice equal to ``value`` as text or as a number; else the type of ``param`` (int
    or float), of the CNN's parameter of that name,
    or ``kind`` (the service's own description: "int", "float" or "str"); with no type known,
    text that reads as an int or a float becomes one.

    Examples:
        >>> typed_value("batch_size", "64.0")
        64
        >>> typed_value("optimizer", "adam")
        'adam'
    """
    if isinstance(param, FixedParam):
        return param.value
    if isinstance(param, ChoiceParam):
        for choice in param.values:
            if _same_value(choice, value):
                return choice
    if isinstance(param, IntParam):
        kind = "int"
    elif isinstance(param, FloatParam):
        kind = "float"
    elif name in KNOWN_PARAMS:
        kind = KNOWN_PARAMS[name].kind
    if kind == "str":
        return str(value)
    try:
        if kind == "int":
            number = float(value)
            return int(round(number)) if math.isfinite(number) else number
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        return value
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                continue
    return value


def _same_value(choice: Any, value: Any) -> bool:
    """True when a choice and a returned value are the same, as text or as numbers."""
    if isinstance(choice, bool):
        return str(value).lower() == str(choice).lower()
    if str(choice) == str(value):
        return True
    if isinstance(choice, str):
        return False
    try:
        return math.isclose(float(choice), float(value), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


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
    """

    max_trials: int = 10
    parallel_trials: int = 1
    epochs: int = 2
    max_minutes: float | None = None
    max_cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, leaving out unset caps."""
        out: dict[str, Any] = {
            "max_trials": self.max_trials,
            "parallel_trials": self.parallel_trials,
            "epochs": self.epochs,
        }
        if self.max_minutes is not None:
            out["max_minutes"] = self.max_minutes
        if self.max_cost_usd is not None:
            out["max_cost_usd"] = self.max_cost_usd
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
        }

    def to_json(self) -> str:
        """Return the spec as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        """Return the spec as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> StudySpec:
        """Validate ``data`` and build a spec; raise SpecError listing every problem."""
        return parse_spec(data)

    @classmethod
    def from_text(cls, text: str) -> StudySpec:
        """Parse JSON or YAML text (YAML is a superset of JSON)."""
        return parse_spec(load_text(text))

    @classmethod
    def load(cls, path: str | Path) -> StudySpec:
        """Read a spec from a .json, .yaml or .yml file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError([f"Cannot read the spec file {p}: {err.strerror}."]) from None
        return cls.from_text(text)

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
    return parse_spec(data)


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Problem:
    """One validation problem: the field's dotted path and a sentence to fix it."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def load_text(text: str) -> Any:
    """Parse JSON or YAML text into Python data; raise SpecError on a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(
            [f"The spec is not valid JSON or YAML{where}: {getattr(err, 'problem', err)}."]
        ) from None


def parse_spec(data: Any) -> StudySpec:
    """Validate raw spec data and build a StudySpec.

    Args:
        data: the spec as parsed from JSON or YAML (a mapping).

    Returns:
        The validated spec.

    Raises:
        SpecError: listing every problem found, each a sentence naming its field.
    """
    problems: list[Problem] = []
    spec = _Parser(problems).spec(data)
    if problems or spec is None:
        raise SpecError([p.message for p in problems])
    return spec


def spec_problems(data: Any) -> list[Problem]:
    """Return every validation problem of raw spec data (empty when valid), with field paths."""
    problems: list[Problem] = []
    _Parser(problems).spec(data)
    return problems


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and v.is_integer()
    )


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


class _Parser:
    """Collects problems while building the spec's parts."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def bad(self, fld: str, message: str) -> None:
        self.problems.append(Problem(fld, message))

    # -- helpers
    def number(
        self,
        d: Mapping[str, Any],
        key: str,
        fld: str,
        *,
        integer: bool = False,
        required: bool = False,
        default: Any = None,
        positive: bool = False,
    ) -> Any:
        if key not in d or d[key] is None:
            if required:
                self.bad(fld, f"{fld} is missing: give it a number.")
            return default
        v = d[key]
        kind = "a whole number" if integer else "a number"
        if not _is_number(v) or (integer and not _is_int(v)):
            self.bad(fld, f"{fld} must be {kind}, not {_fmt(v)}.")
            return default
        if integer:
            v = int(v)
        if positive and v <= 0:
            self.bad(fld, f"{fld} must be greater than 0 (it is {_fmt(v)}).")
            return default
        return v

    def mapping(self, data: Any, fld: str, allowed: Sequence[str]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            self.bad(fld, f"{fld} must be a mapping of {', '.join(allowed)}.")
            return {}
        for key in data:
            if key not in allowed:
                self.bad(
                    fld,
                    f"{fld}.{key} is not a known field; known fields are {', '.join(allowed)}.",
                )
        return dict(data)

    # -- parts
    def spec(self, data: Any) -> StudySpec | None:
        if not isinstance(data, Mapping):
            self.bad("spec", "The spec must be a mapping (a JSON object) of its fields.")
            return None
        top = self.mapping(
            data,
            "spec",
            ("name", "dataset", "model", "space", "strategy", "objective", "budget", "seed"),
        )
        name = top.get("name")
        if not isinstance(name, str) or not name.strip():
            self.bad("name", "name is missing: give the study a short name, e.g. 'cifar-lr'.")
            name = ""
        dataset = self.dataset(top.get("dataset", {"name": "digits"}))
        model = self.model(top.get("model"))
        space = self.space(top.get("space"))
        strategy = top.get("strategy", "bayesian")
        if strategy not in STRATEGIES:
            self.bad(
                "strategy",
                f"strategy {_fmt(strategy)} is unknown; use one of {', '.join(STRATEGIES)}.",
            )
        objective = self.objective(top.get("objective"))
        budget = self.budget(top.get("budget"))
        seed = self.number(top, "seed", "seed", integer=True, default=42)
        if budget is not None and space is not None:
            self.cross_checks(strategy, space, budget)
        if dataset is None or space is None or objective is None or budget is None:
            return None
        if self.problems:
            return None
        return StudySpec(
            name=name.strip(),
            space=tuple(space),
            dataset=dataset,
            strategy=str(strategy),
            objective=objective,
            budget=budget,
            seed=int(seed),
            model=model,
        )

    def dataset(self, data: Any) -> DatasetSpec | None:
        if isinstance(data, str):
            data = {"name": data}
        d = self.mapping(data, "dataset", ("name", "path", "subset", "validation_split"))
        name = d.get("name", "digits")
        if name not in DATASET_NAMES:
            self.bad(
                "dataset.name",
                f"dataset.name {_fmt(name)} is unknown; use one of {', '.join(DATASET_NAMES)}.",
            )
        path = d.get("path")
        if path is not None and not isinstance(path, str):
            self.bad("dataset.path", "dataset.path must be a file or folder path (text).")
            path = None
        if name == "custom" and not path:
            self.bad(
                "dataset.path",
                "dataset.path is missing: a custom dataset needs the path of an .npz file "
                "or of a folder with one subfolder of images per class.",
            )
        subset = self.number(d, "subset", "dataset.subset", integer=True, positive=True)
        split = self.number(d, "validation_split", "dataset.validation_split", default=0.2)
        if split is not None and not 0 < split < 1:
            self.bad(
                "dataset.validation_split",
                f"dataset.validation_split must be between 0 and 1 (it is {_fmt(split)}); "
                "0.2 holds out a fifth of the data.",
            )
        return DatasetSpec(
            name=str(name), path=path, subset=subset, validation_split=float(split or 0.2)
        )

    def model(self, data: Any) -> dict[str, Any]:
        d = self.mapping(data, "model", tuple(MODEL_OPTIONS))
        out = dict(MODEL_OPTIONS)
        for key, value in d.items():
            if key in MODEL_OPTIONS:
                if not isinstance(value, type(MODEL_OPTIONS[key])):
                    self.bad(
                        f"model.{key}",
                        f"model.{key} must be {type(MODEL_OPTIONS[key]).__name__}.",
                    )
                else:
                    out[key] = value
        return out

    def objective(self, data: Any) -> Objective | None:
        if isinstance(data, str):
            data = {"metric": data}
        d = self.mapping(data, "objective", ("metric", "goal"))
        metric = d.get("metric", "val_accuracy")
        if metric not in METRICS:
            self.bad(
                "objective.metric",
                f"objective.metric {_fmt(metric)} is unknown; use one of {', '.join(METRICS)}.",
            )
            return Objective()
        goal = _GOAL_ALIASES.get(str(d.get("goal", METRICS[metric])).lower())
        if goal is None:
            self.bad(
                "objective.goal",
                f"objective.goal {_fmt(d.get('goal'))} is unknown; use 'max' or 'min'.",
            )
            return Objective()
        return Objective(metric=metric, goal=goal)

    def budget(self, data: Any) -> Budget | None:
        d = self.mapping(
            data,
            "budget",
            ("max_trials", "parallel_trials", "epochs", "max_minutes", "max_cost_usd"),
        )
        kw: dict[str, Any] = {}
        for key, default in (("max_trials", 10), ("parallel_trials", 1), ("epochs", 2)):
            kw[key] = self.number(
                d, key, f"budget.{key}", integer=True, positive=True, default=default
            )
        kw["max_minutes"] = self.number(d, "max_minutes", "budget.max_minutes", positive=True)
        kw["max_cost_usd"] = self.number(d, "max_cost_usd", "budget.max_cost_usd", positive=True)
        if kw["parallel_trials"] > kw["max_trials"]:
            self.bad(
                "budget.parallel_trials",
                f"budget.parallel_trials ({kw['parallel_trials']}) is more than "
                f"budget.max_trials ({kw['max_trials']}): lower it to at most {kw['max_trials']}.",
            )
        return Budget(**kw)

    def space(self, data: Any) -> list[Param] | None:
        if data is None:
            self.bad(
                "space",
                "space is missing: add at least one parameter, e.g. learning_rate from "
                "0.001 to 0.1.",
            )
            return None
        if not isinstance(data, Sequence) or isinstance(data, str):
            self.bad("space", "space must be a list of parameters.")
            return None
        if not data:
            self.bad("space", "space is empty: add at least one parameter to tune.")
        out: list[Param] = []
        seen: set[str] = set()
        for i, item in enumerate(data):
            p = self.param(item, i)
            if p is None:
                continue
            if p.name in seen:
                self.bad(
                    f"space.{p.name}",
                    f"space[{i}]: {p.name} appears twice; keep one entry per name.",
                )
                continue
            seen.add(p.name)
            out.append(p)
        return out

    def param(self, item: Any, i: int) -> Param | None:
        where = f"space[{i}]"
        if not isinstance(item, Mapping):
            self.bad(where, f"{where} must be a mapping with a name and a type.")
            return None
        name = item.get("name")
        if name not in KNOWN_PARAMS:
            self.bad(
                f"{where}.name",
                f"{where}.name {_fmt(name)} is not a parameter the CNN knows; known names are "
                f"{', '.join(KNOWN_PARAMS)} (epochs is set by the budget).",
            )
            return None
        fld = f"space.{name}"
        info = KNOWN_PARAMS[name]
        ptype = item.get("type")
        if ptype is None:
            ptype = "choice" if "values" in item else "fixed" if "value" in item else "float"
            if ptype == "float" and info.kind == "int":
                ptype = "int"
        if ptype not in PARAM_TYPES:
            self.bad(
                f"{fld}.type",
                f"{name}: type {_fmt(ptype)} is unknown; use one of {', '.join(PARAM_TYPES)}.",
            )
            return None
        allowed = {
            "float": ("name", "type", "min", "max", "scale", "step"),
            "int": ("name", "type", "min", "max", "scale", "step"),
            "choice": ("name", "type", "values"),
            "fixed": ("name", "type", "value"),
        }[ptype]
        for key in item:
            if key not in allowed:
                self.bad(
                    f"{fld}.{key}",
                    f"{name}: {key} does not apply to a {ptype} parameter; "
                    f"use {', '.join(allowed[2:])}.",
                )
        if ptype in ("float", "int") and info.kind == "str":
            self.bad(
                f"{fld}.type",
                f"{name} takes one of {', '.join(info.values)}: make it a choice or fixed.",
            )
            return None
        if ptype == "float" and info.kind == "int":
            self.bad(f"{fld}.type", f"{name} takes whole numbers: make it an int, not a float.")
            return None
        if ptype == "choice":
            return self.choice(item, name, fld, info)
        if ptype == "fixed":
            if "value" not in item:
                self.bad(f"{fld}.value", f"{name}: a fixed parameter needs a value.")
                return None
            value = item["value"]
            if not self.value_ok(value, info, fld):
                return None
            return FixedParam(name, int(value) if info.kind == "int" else value)
        return self.numeric(item, ptype, name, fld, info)

    def value_ok(self, value: Any, info: ParamInfo, fld: str) -> bool:
        if info.kind == "str":
            if value not in info.values:
                self.bad(
                    fld,
                    f"{info.name}: {_fmt(value)} is not allowed; use one of "
                    f"{', '.join(info.values)}.",
                )
                return False
            return True
        if not _is_number(value) or (info.kind == "int" and not _is_int(value)):
            kind = "whole numbers" if info.kind == "int" else "numbers"
            self.bad(fld, f"{info.name} takes {kind}, not {_fmt(value)}.")
            return False
        assert info.lo is not None and info.hi is not None
        if not info.lo <= value <= info.hi:
            self.bad(
                fld,
                f"{info.name}: {_fmt(value)} is outside the range the CNN accepts "
                f"({_fmt(info.lo)} to {_fmt(info.hi)}).",
            )
            return False
        return True

    def choice(self, item: Mapping[str, Any], name: str, fld: str, info: ParamInfo) -> Param | None:
        values = item.get("values")
        if not isinstance(values, Sequence) or isinstance(values, str) or not values:
            self.bad(
                f"{fld}.values",
                f"{name}: a choice needs a non-empty list of values, e.g. [32, 64, 128].",
            )
            return None
        ok = all([self.value_ok(v, info, f"{fld}.values") for v in values])
        if not ok:
            return None
        clean = [int(v) if info.kind == "int" else v for v in values]
        dupes = sorted({_fmt(v) for v in clean if clean.count(v) > 1})
        if dupes:
            self.bad(
                f"{fld}.values",
                f"{name}: the choice lists {', '.join(dupes)} more than once; "
                "keep each value once.",
            )
            return None
        return ChoiceParam(name, tuple(clean))

    def numeric(
        self, item: Mapping[str, Any], ptype: str, name: str, fld: str, info: ParamInfo
    ) -> Param | None:
        integer = ptype == "int"
        lo = self.number(item, "min", f"{fld}.min", integer=integer, required=True)
        hi = self.number(item, "max", f"{fld}.max", integer=integer, required=True)
        scale = item.get("scale", "linear")
        if scale not in SCALES:
            self.bad(f"{fld}.scale", f"{name}: scale {_fmt(scale)} is unknown; use linear or log.")
            return None
        step = self.number(item, "step", f"{fld}.step", integer=integer, positive=True)
        if lo is None or hi is None:
            return None
        if lo >= hi:
            self.bad(
                f"{fld}.min",
                f"{name}: min ({_fmt(lo)}) must be less than max ({_fmt(hi)}); "
                "swap them or widen the range.",
            )
            return None
        if scale == "log" and lo <= 0:
            self.bad(
                f"{fld}.scale",
                f"{name}: a log scale needs min > 0 (it is {_fmt(lo)}); "
                "raise min or use a linear scale.",
            )
            return None
        if not (self.value_ok(lo, info, f"{fld}.min") and self.value_ok(hi, info, f"{fld}.max")):
            return None
        if step is not None and step > hi - lo:
            self.bad(
                f"{fld}.step",
                f"{name}: step ({_fmt(step)}) is larger than the range {_fmt(lo)}..{_fmt(hi)}; "
                "make it smaller.",
            )
            return None
        if integer:
            return IntParam(name, int(lo), int(hi), int(step or 1), str(scale))
        return FloatParam(name, float(lo), float(hi), str(scale), None if step is None else step)

    def cross_checks(self, strategy: Any, space: Sequence[Param], budget: Budget) -> None:
        if strategy != "grid":
            return
        for p in space:
            if isinstance(p, FloatParam) and p.step is None:
                example = (p.max - p.min) / 10
                n = len(FloatParam(p.name, p.min, p.max, p.scale, example).grid_values() or [])
                self.bad(
                    f"space.{p.name}.step",
                    f"{p.name}: the grid strategy needs a finite grid, but a float range "
                    f"without a step has infinitely many points; give it a step "
                    f"(step {example:g} gives {n} points) or use random or bayesian search.",
                )
