"""budget.early_stopping: one spec field, four translations (local rule, SageMaker, Vertex, Azure)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.backends import platforms
from core.backends.azure import request as ar
from core.backends.local import hypermodel as hm
from core.backends.sagemaker import request as sr
from core.backends.vertex import request as vr
from core.errors import BackendError, SpecError
from core.paths import ASSETS
from core.spec import StudySpec, parse_spec
from tests.harness_azure import SETTINGS as AZURE_SETTINGS
from tests.harness_vertex import SETTINGS as VERTEX_SETTINGS

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SAGEMAKER_BASE = {
    "region": "eu-west-1",
    "bucket": "b",
    "role_arn": "arn:aws:iam::123456789012:role/SM",
}
SAGEMAKER_FIXED = {
    "job_name": "ct-golden",
    "data_uri": "s3://b/data/",
    "trainer_uri": "s3://b/t.tar.gz",
}
AZURE_BASE = {k: v for k, v in AZURE_SETTINGS.items() if k != "data_uri"}


def _spec(strategy: str = "random", early: str | None = "median") -> StudySpec:
    data = StudySpec.load(ASSETS / "specs" / "published_study.json").to_dict()
    data["strategy"] = strategy
    if early is not None:
        data["budget"] = {**data["budget"], "early_stopping": early}
    return parse_spec(data)


# ----------------------------------------------------------------------------- the spec field


def test_the_field_defaults_to_none_and_round_trips() -> None:
    assert _spec(early=None).budget.early_stopping == "none"
    assert "early_stopping" not in _spec(early=None).to_dict()["budget"]  # old specs unchanged
    spec = _spec(early="Median")
    assert spec.budget.early_stopping == "median"
    assert parse_spec(spec.to_dict()) == spec
    assert StudySpec.from_text(spec.to_yaml()).budget.early_stopping == "median"


def test_an_unknown_rule_is_one_sentence_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        _spec(early="patience")
    assert "budget.early_stopping 'patience' is unknown; use none or median." in str(err.value)


# ----------------------------------------------------------------------------- the local rule


def test_the_median_rule_waits_for_the_grace_trials() -> None:
    done = [{1: 0.5, 2: 0.6}, {1: 0.6, 2: 0.7}]
    assert not hm.median_says_stop(0.1, 1, done, "max")  # 2 completed < 3
    done.append({1: 0.7, 2: 0.8})
    assert hm.median_says_stop(0.1, 1, done, "max")
    assert not hm.median_says_stop(0.6, 1, done, "max")  # equal to the median: not worse
    assert hm.median_says_stop(0.65, 2, done, "max")  # median of best so far at 2 is 0.7


def test_the_median_rule_uses_best_so_far_and_the_goal() -> None:
    # best so far at epoch 2 of each: 0.9, 0.5, 0.6 (not the last value) -> median 0.6
    done = [{1: 0.9, 2: 0.2}, {1: 0.5, 2: 0.4}, {1: 0.6, 2: 0.3}]
    assert hm.median_says_stop(0.55, 2, done, "max")
    assert not hm.median_says_stop(0.61, 2, done, "max")
    losses = [{1: 1.0}, {1: 2.0}, {1: 3.0}]
    assert hm.median_says_stop(2.5, 1, losses, "min")
    assert not hm.median_says_stop(1.5, 1, losses, "min")


def test_only_trials_that_reached_the_epoch_count() -> None:
    # three completed trials, one stopped after epoch 1: at epoch 2 only two reached it
    done = [{1: 0.5}, {1: 0.6, 2: 0.7}, {1: 0.7, 2: 0.8}]
    assert not hm.median_says_stop(0.1, 2, done, "max")
    assert hm.median_says_stop(0.1, 1, done, "max")


def test_curves_are_written_whole_and_read_back(tmp_path: Path) -> None:
    hm.write_curve(tmp_path, "00", {1: 0.5, 3: float("nan")})
    hm.write_curve(tmp_path, "01", {2: 0.25})
    (tmp_path / hm.CURVES_FOLDER / "02.json").write_text("{half")  # being written: skipped
    curves = hm.read_curves(tmp_path)
    assert curves[1] == {2: 0.25} and curves[0][1] == 0.5 and len(curves) == 2
    assert hm.best_so_far(curves[0], 3, "max") == 0.5  # NaN never counts


# ----------------------------------------------------------------------------- the clouds


def test_sagemaker_auto_from_the_spec_and_the_setting_overrides() -> None:
    assert sr.early_stopping_type(_spec(), {}) == "Auto"
    assert sr.early_stopping_type(_spec(early=None), {}) == "Off"
    assert sr.early_stopping_type(_spec(), {"early_stopping": "Off"}) == "Off"
    assert sr.early_stopping_type(_spec(early=None), {"early_stopping": "Auto"}) == "Auto"
    # hyperband stops jobs itself; SageMaker allows only Off with it
    assert sr.early_stopping_type(_spec("hyperband"), {}) == "Off"
    request = sr.build_request(_spec("hyperband"), SAGEMAKER_BASE, **SAGEMAKER_FIXED)
    assert request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Off"
    with pytest.raises(BackendError, match="Hyperband"):
        sr.build_request(
            _spec("hyperband"), {**SAGEMAKER_BASE, "early_stopping": "Auto"}, **SAGEMAKER_FIXED
        )


def test_a_sagemaker_job_with_auto_reads_back_as_median() -> None:
    request = sr.build_request(_spec(), SAGEMAKER_BASE, **SAGEMAKER_FIXED)
    description = {
        "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
        "TrainingJobDefinition": request["TrainingJobDefinition"],
    }
    assert sr.spec_from_job(description, "ct-golden")["budget"]["early_stopping"] == "median"


def test_vertex_median_from_the_spec_and_the_setting_overrides() -> None:
    def stopping(spec: StudySpec, settings: dict[str, Any]) -> Any:
        study = vr.build_request(spec, settings)["studySpec"]
        return study.get("medianAutomatedStoppingSpec")

    assert stopping(_spec(), dict(VERTEX_SETTINGS)) == {}  # present: use_elapsed_duration False
    assert stopping(_spec(early=None), dict(VERTEX_SETTINGS)) is None
    assert stopping(_spec(), dict(VERTEX_SETTINGS, early_stopping="off")) is None


def test_azure_median_policy_from_the_spec() -> None:
    rest = ar.rest_body(_spec(), AZURE_BASE)
    policy = rest["properties"]["earlyTermination"]
    assert policy["policyType"] == "MedianStopping" and policy["delayEvaluation"] == 1
    assert "earlyTermination" not in ar.rest_body(_spec(early=None), AZURE_BASE)["properties"]
    # bayesian takes no policy: the spec's rule is left out and said so; a setting is refused
    assert "earlyTermination" not in ar.rest_body(_spec("bayesian"), AZURE_BASE)["properties"]
    assert "Bayesian" in (ar.early_stopping_note(_spec("bayesian"), AZURE_BASE) or "")
    with pytest.raises(SpecError, match="Bayesian"):
        ar.rest_body(_spec("bayesian"), {**AZURE_BASE, "early_termination": "median_stopping"})
    bandit = ar.rest_body(_spec(), {**AZURE_BASE, "early_termination": "bandit"})
    assert bandit["properties"]["earlyTermination"]["policyType"] == "Bandit"


# ----------------------------------------------------------------------------- the notes


@pytest.mark.parametrize("name", list(platforms.PLATFORMS))
def test_every_platform_says_how_its_rule_works(name: str) -> None:
    assert platforms.early_stopping_note(name, _spec(early=None), {}) is None
    note = platforms.early_stopping_note(name, _spec(), {})
    assert note and "median" in note.lower()
    assert note.split()[0].rstrip(":") in platforms.platform(name).short_label  # names itself


def test_the_azure_yaml_is_headed_by_the_note() -> None:
    assert "# Azure ML (MedianStoppingPolicy" in ar.to_yaml(_spec(), AZURE_BASE)


# ----------------------------------------------------------------------------- goldens


GOLDEN_CASES: dict[str, Any] = {
    "sagemaker/early_stopping_random_median.json": lambda: sr.to_json(
        sr.build_request(_spec(), SAGEMAKER_BASE, **SAGEMAKER_FIXED)
    ),
    "vertex/early_stopping_random_median.json": lambda: (
        json.dumps(vr.build_request(_spec(), dict(VERTEX_SETTINGS)), indent=2) + "\n"
    ),
    "azure/early_stopping_random_median.yaml": lambda: ar.to_yaml(_spec(), AZURE_BASE),
    "azure/early_stopping_random_median.rest.json": lambda: (
        json.dumps(ar.rest_body(_spec(), AZURE_BASE), indent=2) + "\n"
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_each_translation_matches_its_golden(case: str) -> None:
    text = GOLDEN_CASES[case]()
    path = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    stored = path.read_text(encoding="utf-8")
    if path.suffix == ".json":  # the SDKs' key order may vary: compare the requests
        assert json.loads(text) == json.loads(stored)
    else:
        assert text == stored


# ----------------------------------------------------------------------------- a real tuner


def _tune(tmp_path: Path, early: str, curves: list[dict[int, float]]) -> Any:
    """Run one real KerasTuner trial of 3 epochs on digits after ``curves`` completed."""
    from core.backends.local.hypermodel import PROJECT_NAME, make_tuner
    from core.training.data import load_dataset

    spec = parse_spec(
        {
            "name": "median",
            "space": [{"name": "learning_rate", "type": "fixed", "value": 0.01}],
            "strategy": "random",
            "budget": {"max_trials": 1, "epochs": 3, "early_stopping": early},
        }
    )
    project = tmp_path / PROJECT_NAME
    for i, curve in enumerate(curves):
        hm.write_curve(project, f"done{i}", curve)
    tuner = make_tuner(spec, load_dataset("digits", subset=400, seed=0), tmp_path)
    tuner.search(verbose=0)
    (trial,) = tuner.oracle.trials.values()
    return trial, project


@pytest.mark.slow
def test_a_hopeless_trial_stops_early_and_is_recorded_completed(tmp_path: Path) -> None:
    perfect = [{1: 1.0, 2: 1.0, 3: 1.0}] * 3
    trial, project = _tune(tmp_path, "median", perfect)
    assert trial.status == "COMPLETED" and trial.score is not None
    assert trial.metrics.get_last_value("early_stopped") == 1.0
    assert trial.best_step == 0  # it ran one epoch: its best epoch is the first
    # its own curve joins the completed ones, one epoch long
    assert len(hm.read_curves(project)) == 4
    assert sorted(hm.read_curves(project), key=len)[0].keys() == {1}


@pytest.mark.slow
def test_without_the_rule_or_its_grace_trials_a_trial_runs_every_epoch(tmp_path: Path) -> None:
    perfect = [{1: 1.0, 2: 1.0, 3: 1.0}] * 3
    trial, project = _tune(tmp_path / "off", "none", perfect)
    assert not trial.metrics.exists("early_stopped") and trial.status == "COMPLETED"
    assert len(hm.read_curves(project)) == 3  # no curve written when the rule is off
    trial, project = _tune(tmp_path / "grace", "median", perfect[:2])
    assert not trial.metrics.exists("early_stopped")
    assert max(hm.read_curves(project), key=len).keys() == {1, 2, 3}


def test_the_sagemaker_request_with_auto_is_a_valid_body() -> None:
    """botocore's own model of CreateHyperParameterTuningJob accepts it."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateHyperParameterTuningJob").input_shape
    validate_parameters(sr.build_request(_spec(), SAGEMAKER_BASE, **SAGEMAKER_FIXED), shape)
