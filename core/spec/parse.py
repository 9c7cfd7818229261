"""Reading a spec: JSON or YAML text, every problem with its field path, then a StudySpec."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import SpecError
from core.spec.design import CONFIG_INDEX, MAX_CONFIGURATIONS
from core.spec.params import (
    _GOAL_ALIASES,
    DATASET_NAMES,
    EARLY_STOPPING,
    KNOWN_PARAMS,
    LIMITS,
    MAX_GRID_POINTS,
    MAX_NAME_CHARS,
    METRICS,
    MODEL_OPTIONS,
    PARAM_TYPES,
    SCALES,
    SEED_MAX,
    STRATEGIES,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    ParamInfo,
)
from core.spec.reading import plain_data_problem
from core.spec.study import (
    Budget,
    DatasetSpec,
    Objective,
    StudySpec,
)

log = logging.getLogger(__name__)

_MAX_PATH_CHARS = 4_096  # Linux's PATH_MAX

# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Problem:
    """One validation problem: the field's dotted path and a sentence to fix it."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


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


def param_type(item: Mapping[str, Any], info: ParamInfo) -> Any:
    """Return a parameter's type: as given, else what its fields imply (values: a choice...)."""
    ptype = item.get("type")
    if ptype is None:
        ptype = "choice" if "values" in item else "fixed" if "value" in item else "float"
        if ptype == "float" and info.kind == "int":
            ptype = "int"
    return ptype


def _is_number(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return isinstance(v, int) or math.isfinite(v)  # an int of any size is finite


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and v.is_integer()
    )


_FMT_CHARS = 60


def _fmt(v: Any) -> str:
    """A value as a sentence quotes it: text in quotes, long values cut short."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"a {int(v.bit_length() * math.log10(2)) + 1}-digit number"
    text = repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)
    return text if len(text) <= _FMT_CHARS else text[: _FMT_CHARS - 3] + "..."


def _fmt_limit(v: float) -> str:
    return f"{v:,}" if float(v).is_integer() else f"{v:g}"


class _Parser:
    """Collects problems while building the spec's parts."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.design = False  # a same-configurations spec: config_index is a parameter

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
        maximum: float | None = None,
        why: str = "",
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
        if maximum is None and fld in LIMITS:
            maximum, why = LIMITS[fld]
        if maximum is not None and v > maximum:
            because = f" ({why})" if why else ""
            self.bad(fld, f"{fld} must be at most {_fmt_limit(maximum)}{because}; it is {_fmt(v)}.")
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
        shape = plain_data_problem(data)
        if shape:
            self.bad("spec", f"The spec {shape}")
            return None
        top = self.mapping(
            data,
            "spec",
            (
                "name",
                "dataset",
                "model",
                "space",
                "strategy",
                "objective",
                "budget",
                "seed",
                "configurations",
            ),
        )
        self.design = top.get("configurations") is not None
        name = top.get("name")
        if not isinstance(name, str) or not name.strip():
            self.bad("name", "name is missing: give the study a short name, e.g. 'cifar-lr'.")
            name = ""
        elif len(name.strip()) > MAX_NAME_CHARS:
            self.bad(
                "name",
                f"name is {len(name.strip()):,} characters long; give the study a short name "
                f"of at most {MAX_NAME_CHARS} characters, e.g. 'cifar-lr'.",
            )
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
        seed = self.seed(top, budget)
        if budget is not None and space is not None:
            self.cross_checks(strategy, space, budget)
        configurations = self.configurations(top.get("configurations"), space, strategy, budget)
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
            configurations=configurations,
        )

    def seed(self, top: Mapping[str, Any], budget: Budget | None) -> int:
        trials = budget.max_trials if budget is not None else 1
        top_seed = SEED_MAX - (trials - 1)
        seed = self.number(
            top,
            "seed",
            "seed",
            integer=True,
            default=42,
            maximum=top_seed,
            why=f"trial n trains with seed + n, and the last of {trials:,} trials must fit "
            f"NumPy's and TensorFlow's seeds, 0 to {SEED_MAX:,}",
        )
        if seed < 0:
            self.bad("seed", f"seed must be 0 or more (it is {_fmt(seed)}); 42 is usual.")
            return 42
        return int(seed)

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
        if path is not None and (not isinstance(path, str) or len(path) > _MAX_PATH_CHARS):
            self.bad(
                "dataset.path",
                f"dataset.path must be a file or folder path (text of at most "
                f"{_MAX_PATH_CHARS:,} characters).",
            )
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
        if not isinstance(metric, str) or metric not in METRICS:
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
            (
                "max_trials",
                "parallel_trials",
                "epochs",
                "max_minutes",
                "max_cost_usd",
                "early_stopping",
            ),
        )
        kw: dict[str, Any] = {}
        for key, default in (("max_trials", 10), ("parallel_trials", 1), ("epochs", 2)):
            kw[key] = self.number(
                d, key, f"budget.{key}", integer=True, positive=True, default=default
            )
        kw["max_minutes"] = self.number(d, "max_minutes", "budget.max_minutes", positive=True)
        kw["max_cost_usd"] = self.number(d, "max_cost_usd", "budget.max_cost_usd", positive=True)
        kw["early_stopping"] = str(d.get("early_stopping") or "none").lower()
        if kw["early_stopping"] not in EARLY_STOPPING:
            self.bad(
                "budget.early_stopping",
                f"budget.early_stopping {_fmt(d['early_stopping'])} is unknown; use "
                f"{' or '.join(EARLY_STOPPING)}.",
            )
            kw["early_stopping"] = "none"
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
        if name == CONFIG_INDEX and self.design:
            values = item.get("values")
            return ChoiceParam(name, tuple(values)) if isinstance(values, list) else None
        if not isinstance(name, str) or name not in KNOWN_PARAMS:
            self.bad(
                f"{where}.name",
                f"{where}.name {_fmt(name)} is not a parameter the CNN knows; known names are "
                f"{', '.join(KNOWN_PARAMS)} (epochs is set by the budget).",
            )
            return None
        fld = f"space.{name}"
        info = KNOWN_PARAMS[name]
        ptype = param_type(item, info)
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
        dupes = sorted({_fmt(v) for v, n in Counter(clean).items() if n > 1})
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
        if step is not None and (hi - lo) / step >= MAX_GRID_POINTS:
            self.bad(
                f"{fld}.step",
                f"{name}: step ({_fmt(step)}) cuts {_fmt(lo)}..{_fmt(hi)} into more than "
                f"{MAX_GRID_POINTS:,} grid points; make it larger or leave it out for a "
                "continuous range.",
            )
            return None
        if integer:
            return IntParam(name, int(lo), int(hi), int(step or 1), str(scale))
        return FloatParam(name, float(lo), float(hi), str(scale), None if step is None else step)

    def configurations(
        self, data: Any, space: Sequence[Param] | None, strategy: Any, budget: Budget | None
    ) -> tuple[dict[str, Any], ...]:
        """The same-configurations design (core.spec.design): the draws and their index."""
        if data is None:
            return ()
        fld = "configurations"
        if not isinstance(data, list) or not data or len(data) > MAX_CONFIGURATIONS:
            self.bad(fld, f"{fld} must be a list of 1 to {MAX_CONFIGURATIONS} configurations.")
            return ()
        out = []
        for i, config in enumerate(data):
            if not isinstance(config, Mapping) or not config:
                self.bad(f"{fld}[{i}]", f"{fld}[{i}] must map parameter names to values.")
                continue
            for name, value in config.items():
                if name not in KNOWN_PARAMS:
                    self.bad(f"{fld}[{i}]", f"{fld}[{i}]: {name!r} is not a tunable parameter.")
                else:
                    self.value_ok(value, KNOWN_PARAMS[name], f"{fld}[{i}].{name}")
            out.append(dict(config))
        index = next((p for p in space or () if p.name == CONFIG_INDEX), None)
        expected = ChoiceParam(CONFIG_INDEX, tuple(range(len(data))))
        if index != expected or strategy != "grid":
            self.bad(
                fld,
                f"{fld}: with {len(data)} configurations the space must hold the choice "
                f"{CONFIG_INDEX} of 0 to {len(data) - 1} under the grid strategy; build the "
                "design with core.spec.design.same_configurations or the Launch page.",
            )
        if budget is not None and budget.max_trials != len(data):
            self.bad(
                "budget.max_trials",
                f"budget.max_trials must be {len(data)}: every configuration trains once.",
            )
        return tuple(out)

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
