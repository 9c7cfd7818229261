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

from core.spec.params import (
    DATASET_NAMES,
    EARLY_STOPPING,
    GOALS,
    KNOWN_PARAMS,
    LIMITS,
    MAX_GRID_POINTS,
    MAX_NAME_CHARS,
    METRICS,
    MODEL_OPTIONS,
    OPTIMIZERS,
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
    default_params,
    typed_value,
)
from core.spec.parse import (
    Problem,
    parse_spec,
    spec_problems,
)
from core.spec.reading import (
    MAX_NESTING,
    MAX_SPEC_BYTES,
    check_size,
    load_bytes,
    load_text,
    read_spec_file,
)
from core.spec.study import (
    Budget,
    DatasetSpec,
    Objective,
    StudySpec,
    discretise,
    sample_space,
    space_cardinality,
)

__all__ = [
    "Budget",
    "ChoiceParam",
    "DATASET_NAMES",
    "DatasetSpec",
    "FixedParam",
    "FloatParam",
    "GOALS",
    "IntParam",
    "KNOWN_PARAMS",
    "LIMITS",
    "MAX_GRID_POINTS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_SPEC_BYTES",
    "METRICS",
    "MODEL_OPTIONS",
    "OPTIMIZERS",
    "EARLY_STOPPING",
    "Objective",
    "PARAM_TYPES",
    "Param",
    "ParamInfo",
    "Problem",
    "SCALES",
    "SEED_MAX",
    "STRATEGIES",
    "StudySpec",
    "check_size",
    "default_params",
    "discretise",
    "load_bytes",
    "load_text",
    "parse_spec",
    "read_spec_file",
    "sample_space",
    "space_cardinality",
    "spec_problems",
    "typed_value",
]
