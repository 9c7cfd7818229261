"""Parameter types, the tunable parameters (KNOWN_PARAMS) and the spec's vocabulary."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from core.training.datasets import DATASETS

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("grid", "random", "bayesian", "hyperband")
GOALS: tuple[str, ...] = ("max", "min")
METRICS: dict[str, str] = {
    "val_accuracy": "max",
    "val_loss": "min",
    "accuracy": "max",
    "loss": "min",
}
DATASET_NAMES: tuple[str, ...] = tuple(d.name for d in DATASETS)
"""The names ``dataset.name`` may take: the registry's, :data:`core.training.datasets.DATASETS`."""
PARAM_TYPES: tuple[str, ...] = ("float", "int", "choice", "fixed")
SCALES: tuple[str, ...] = ("linear", "log")
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")
EARLY_STOPPING: tuple[str, ...] = ("none", "median")
"""``budget.early_stopping``: none, or stop a trial whose best so far is below the median."""
MODEL_OPTIONS: dict[str, Any] = {"batch_norm": True}

MAX_NAME_CHARS = 100
"""The longest study name: it titles every page, file name and report."""
SEED_MAX = 2**32 - 1
"""NumPy's and TensorFlow's largest seed; trial n trains with seed + n, which must fit too."""
MAX_GRID_POINTS = 10_000
"""The most grid points one float parameter's step may give."""
LIMITS: dict[str, tuple[float, str]] = {
    "budget.max_trials": (10_000, "ten thousand trials is weeks of training even for a small CNN"),
    "budget.epochs": (1_000, "the CNN converges in tens of epochs"),
    "budget.max_minutes": (525_600, "a year"),
    "budget.max_cost_usd": (1_000_000, "a million dollars"),
    "dataset.subset": (1_000_000_000, "a billion images"),
}
"""The largest value of each bounded budget and dataset field, and why (README lists them)."""

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


# Defaults chosen to train fast and well on 2 CPU cores (digits: 0.98 val accuracy after
# 5 epochs, ~8 s). core.training.model reads them from here.
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
        ParamInfo(
            "momentum",
            "float",
            0.9,
            0.0,
            0.99,
            description="SGD's momentum (adam and rmsprop ignore it)",
        ),
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
