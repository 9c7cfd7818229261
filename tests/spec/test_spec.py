"""The study spec: parsing, validation sentences, serialisation, cardinality and sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import SpecError
from core.spec import (
    KNOWN_PARAMS,
    ChoiceParam,
    FloatParam,
    IntParam,
    StudySpec,
    discretise,
    parse_spec,
    spec_problems,
)

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {
    "name": "published-study",
    "dataset": {"name": "digits"},
    "space": [
        {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1, "scale": "linear"},
        {"name": "batch_size", "type": "choice", "values": [32, 64, 128]},
        {"name": "dropout_rate", "type": "float", "min": 0.2, "max": 0.4},
    ],
    "strategy": "bayesian",
    "objective": {"metric": "val_accuracy", "goal": "max"},
    "budget": {"max_trials": 20, "parallel_trials": 3, "epochs": 3},
    "seed": 42,
}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def with_(**changes: object) -> dict:
    data = json.loads(json.dumps(PUBLISHED))
    data.update(changes)
    return data


def test_published_study_is_expressible_exactly() -> None:
    spec = parse_spec(PUBLISHED)
    assert spec.param("learning_rate") == FloatParam("learning_rate", 0.001, 0.1, "linear")
    assert spec.param("batch_size") == ChoiceParam("batch_size", (32, 64, 128))
    assert spec.param("dropout_rate") == FloatParam("dropout_rate", 0.2, 0.4)
    assert (spec.budget.max_trials, spec.budget.parallel_trials) == (20, 3)
    assert (spec.objective.metric, spec.objective.goal) == ("val_accuracy", "max")
    assert spec.cardinality() is None


@pytest.mark.parametrize("path", sorted((ROOT / "assets" / "specs").iterdir()))
def test_shipped_specs_validate_and_round_trip(path: Path, tmp_path: Path) -> None:
    spec = StudySpec.load(path)
    assert StudySpec.from_text(spec.to_json()) == spec
    assert StudySpec.from_text(spec.to_yaml()) == spec
    out = tmp_path / ("copy" + path.suffix)
    spec.save(out)
    assert StudySpec.load(out) == spec


def test_every_problem_is_reported_at_once_with_its_field() -> None:
    data = with_(
        name="",
        strategy="annealing",
        budget={"max_trials": 2, "parallel_trials": 3, "epochs": 0},
        objective={"metric": "f1"},
        dataset={"name": "imagenet"},
    )
    problems = problems_of(data)
    assert len(problems) == 6
    joined = "\n".join(problems)
    for field in (
        "name",
        "strategy",
        "budget.parallel_trials",
        "budget.epochs",
        "objective.metric",
    ):
        assert field in joined
    assert "dataset.name 'imagenet' is unknown" in joined


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (
            {"name": "learning_rate", "type": "float", "min": 0.1, "max": 0.01},
            "must be less than max",
        ),
        (
            {"name": "learning_rate", "type": "float", "min": 0, "max": 0.1, "scale": "log"},
            "log scale needs min > 0",
        ),
        ({"name": "batch_size", "type": "choice", "values": []}, "non-empty list"),
        ({"name": "batch_size", "type": "choice", "values": [32, 32, 64]}, "more than once"),
        (
            {"name": "optimizer", "type": "choice", "values": ["adam", "lion"]},
            "'lion' is not allowed",
        ),
        ({"name": "lr", "type": "float", "min": 0.1, "max": 1}, "known names are learning_rate"),
        ({"name": "batch_size", "type": "float", "min": 1, "max": 9}, "make it an int"),
        ({"name": "dropout_rate", "type": "float", "min": "a", "max": 0.3}, "must be a number"),
        ({"name": "conv_blocks", "type": "int", "min": 1.5, "max": 3}, "whole number"),
        ({"name": "dropout_rate", "type": "gaussian"}, "type 'gaussian' is unknown"),
        (
            {"name": "dropout_rate", "type": "float", "min": 0.1, "max": 0.3, "step": 0.5},
            "step (0.5) is larger",
        ),
    ],
)
def test_malformed_parameters_name_their_field(param: dict, expected: str) -> None:
    problems = problems_of(with_(space=[param]))
    assert len(problems) == 1
    assert expected in problems[0]
    assert param["name"] in problems[0]


def test_grid_over_a_float_without_step_says_how_to_make_it_finite() -> None:
    problems = problems_of(with_(strategy="grid"))
    assert len(problems) == 2  # learning_rate and dropout_rate
    assert "infinitely many points" in problems[0]
    assert "step 0.0099 gives 11 points" in problems[0]


def test_grid_with_steps_has_a_finite_cardinality() -> None:
    data = with_(strategy="grid")
    data["space"][0]["step"] = 0.033
    data["space"][2]["step"] = 0.1
    spec = parse_spec(data)
    lr = spec.param("learning_rate")
    assert isinstance(lr, FloatParam)
    assert lr.grid_values() == [0.001, 0.034, 0.067, 0.1]
    assert spec.cardinality() == 4 * 3 * 3


def test_discretise_turns_floats_into_finite_grids() -> None:
    spec = parse_spec(PUBLISHED)
    grid = discretise(spec, {"learning_rate": 0.033, "dropout_rate": 0.1})
    assert grid.cardinality() == 36
    with pytest.raises(SpecError, match="dropout_rate"):
        discretise(spec, {"learning_rate": 0.033})


def test_sample_is_seeded_in_range_and_fills_defaults() -> None:
    spec = parse_spec(PUBLISHED)
    a, b = spec.sample(50), spec.sample(50)
    assert a == b
    assert a != spec.sample(50, seed=1)
    for config in a:
        assert 0.001 <= config["learning_rate"] <= 0.1
        assert config["batch_size"] in (32, 64, 128)
        assert set(config) == set(KNOWN_PARAMS)


def test_log_int_and_fixed_params() -> None:
    data = with_(
        space=[
            {"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-1, "scale": "log"},
            {"name": "filters", "type": "int", "min": 16, "max": 64, "step": 16},
            {"name": "optimizer", "type": "fixed", "value": "sgd"},
        ]
    )
    spec = parse_spec(data)
    assert spec.param("filters") == IntParam("filters", 16, 64, 16)
    assert spec.cardinality() is None
    values = [c["learning_rate"] for c in spec.sample(200)]
    # log sampling puts about a third of the draws in each decade
    assert 40 < sum(v < 1e-3 for v in values) < 95
    assert spec.fixed_values()["optimizer"] == "sgd"


def test_problems_carry_field_paths_for_the_ui() -> None:
    data = with_(space=[{"name": "learning_rate", "type": "float", "min": 1, "max": 0.5}])
    fields = [p.field for p in spec_problems(data)]
    assert fields == ["space.learning_rate.min"]
    assert spec_problems(PUBLISHED) == []


def test_unreadable_text_is_a_sentence() -> None:
    with pytest.raises(SpecError, match="not valid JSON or YAML at line 1"):
        StudySpec.from_text('{"name": [')
    with pytest.raises(SpecError, match="must be a mapping"):
        StudySpec.from_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="Cannot read the spec file"):
        StudySpec.load("/nonexistent/spec.json")


def test_custom_dataset_needs_a_path_and_options_are_checked() -> None:
    problems = problems_of(with_(dataset={"name": "custom", "validation_split": 1.5, "subset": -3}))
    joined = "\n".join(problems)
    assert "dataset.path is missing" in joined
    assert "dataset.validation_split must be between 0 and 1" in joined
    assert "dataset.subset must be greater than 0" in joined


def test_typed_value_restores_what_services_send_back() -> None:
    from core.spec import ChoiceParam, FixedParam, IntParam, typed_value

    batch = ChoiceParam(name="batch_size", values=(32, 64, 128))
    assert typed_value("batch_size", "64", batch) == 64  # SageMaker: text
    assert typed_value("batch_size", 32.0, batch) == 32  # Vertex AI: a float
    assert isinstance(typed_value("batch_size", 32.0, batch), int)
    assert typed_value("batch_size", 96.0, batch) == 96  # not a choice: the CNN's int type
    opt = ChoiceParam(name="optimizer", values=("adam", "sgd"))
    assert typed_value("optimizer", "sgd", opt) == "sgd"
    flag = ChoiceParam(name="optimizer", values=(True, False))  # bools match their text
    assert typed_value("optimizer", "false", flag) is False
    assert typed_value("filters", "48.0", IntParam(name="filters", min=8, max=64)) == 48
    assert typed_value("learning_rate", "0.01") == pytest.approx(0.01)
    assert typed_value("kernel_size", "3", FixedParam(name="kernel_size", value=5)) == 5
    assert typed_value("dense_units", "nan") != typed_value("dense_units", "nan")  # NaN stays
    assert typed_value("dense_units", "lots") == "lots"  # unreadable: left as sent
    assert typed_value("momentum", "0.9") == pytest.approx(0.9)  # unknown name: read a number
    assert typed_value("note", "7") == 7 and typed_value("note", "x7") == "x7"
    assert typed_value("note", "7", kind="float") == 7.0
    assert typed_value("note", 7.0, kind="str") == "7.0"
