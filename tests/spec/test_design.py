"""The same-configurations design: drawing, the spec round trip, the trainer and a local run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.backends.records import trial_seed
from core.errors import SpecError
from core.spec import StudySpec
from core.spec.design import (
    CONFIG_INDEX,
    configuration,
    recorded_params,
    same_configurations,
)
from core.training.train import UsageError, parse_config

PUBLISHED = Path(__file__).resolve().parents[2] / "assets" / "specs" / "published_study.json"


@pytest.fixture(scope="module")
def published() -> StudySpec:
    return StudySpec.load(PUBLISHED)


def test_draws_are_seeded_distinct_and_inside_the_space(published) -> None:
    design = same_configurations(published, 6)
    assert design == same_configurations(published, 6)  # same seed, same draws
    other = same_configurations(dataclasses.replace(published, seed=1), 6)
    assert other.configurations != design.configurations
    assert len({json.dumps(c, sort_keys=True) for c in design.configurations}) == 6
    for config in design.configurations:
        assert set(config) == {p.name for p in published.tuned_params()}
        lr = published.param("learning_rate")
        assert lr.min <= config["learning_rate"] <= lr.max
    assert design.strategy == "grid" and design.budget.max_trials == 6
    assert [p.name for p in design.tuned_params()] == [CONFIG_INDEX]
    assert design.cardinality() == 6


def test_design_spec_round_trips_and_refuses_inconsistency(published) -> None:
    design = same_configurations(published, 4)
    assert StudySpec.from_dict(json.loads(design.to_json())) == design
    data = design.to_dict()
    data["budget"]["max_trials"] = 5
    data["strategy"] = "random"
    data["configurations"][1]["learning_rate"] = -1.0
    data["configurations"][2]["colour"] = "red"
    with pytest.raises(SpecError) as err:
        StudySpec.from_dict(data)
    text = str(err.value)
    assert "budget.max_trials must be 4: every configuration trains once" in text
    assert "under the grid strategy" in text
    assert "learning_rate: -1 is outside the range the CNN accepts" in text
    assert "'colour' is not a tunable parameter" in text
    # without configurations, config_index is not a parameter the CNN knows
    plain = published.to_dict()
    plain["space"] = [{"name": CONFIG_INDEX, "type": "choice", "values": [0, 1]}]
    with pytest.raises(SpecError, match="config_index' is not a parameter the CNN knows"):
        StudySpec.from_dict(plain)


def test_too_many_configurations_for_a_small_space_is_a_sentence() -> None:
    spec = StudySpec.from_dict(
        {
            "name": "tiny",
            "space": [{"name": "batch_size", "type": "choice", "values": [32, 64]}],
            "budget": {"max_trials": 2},
        }
    )
    with pytest.raises(SpecError, match="holds 2 distinct configurations, fewer than the 3"):
        same_configurations(spec, 3)
    with pytest.raises(SpecError, match="whole number from 2 to 500"):
        same_configurations(spec, 1)
    assert len(same_configurations(spec, 2).configurations) == 2


def test_index_maps_to_its_configuration_and_seed(published) -> None:
    design = same_configurations(published, 3)
    params = configuration(design.configurations, {CONFIG_INDEX: "2", "epochs": 3})
    assert params == {"epochs": 3, **design.configurations[2]}
    with pytest.raises(ValueError, match="names no configuration; this study has 3"):
        configuration(design.configurations, {CONFIG_INDEX: 3})
    stored = recorded_params(design, {CONFIG_INDEX: 1.0})
    assert stored == {CONFIG_INDEX: 1, **design.configurations[1]}
    # the seed follows the configuration, not the order a service ran the trial in
    assert trial_seed(42, 5, {CONFIG_INDEX: "1"}) == 43
    assert trial_seed(42, 5, {"learning_rate": 0.01}) == 47


def test_trainer_trains_the_indexed_configuration(published, tmp_path) -> None:
    design = same_configurations(published, 3)
    file = tmp_path / "configurations.json"
    file.write_text(json.dumps(list(design.configurations)), encoding="utf-8")
    env = {"CLOUD_ML_TRIAL_ID": "3"}  # the service's own order is ignored: the index decides
    config = parse_config(["--config_index=1", f"--configurations={file}", "--seed=42"], env)
    for name, value in design.configurations[1].items():
        assert config.params[name] == pytest.approx(value)
    assert config.trial == 1 and config.trial_seed == 43
    with pytest.raises(UsageError, match="names no configuration"):
        parse_config(["--config_index=9", f"--configurations={file}"], {})
    with pytest.raises(UsageError, match="needs the configurations file"):
        parse_config(["--config_index=0", f"--configurations={tmp_path / 'none.json'}"], {})


def test_cli_tune_same_configurations_stores_the_design(home, capsys) -> None:
    from core.cli import main
    from core.runs import cancel_run
    from core.store import Store

    assert main(["tune", str(PUBLISHED), "--same-configurations", "3", "--detach"]) == 0
    assert "(3 trials)" in capsys.readouterr().out
    store = Store()
    run = store.list_runs()[0]
    try:
        spec = StudySpec.from_dict(run.spec)
        assert spec == same_configurations(StudySpec.load(PUBLISHED), 3)
    finally:
        cancel_run(store, run.id)
    assert main(["tune", str(PUBLISHED), "--same-configurations", "1"]) == 2
    assert "whole number from 2 to 500" in capsys.readouterr().err


def test_each_clouds_request_gives_the_trainer_the_indexed_configuration(
    published, tmp_path
) -> None:
    """The trainer, started as each service starts it from our request, trains configuration
    3 with seed + 3: SageMaker's hyperparameters.json (JSON-encoded strings), Vertex AI's
    container arguments and Azure ML's command line with the sweep value substituted."""
    import shlex

    from core.backends.azure import request as az
    from core.backends.sagemaker import request as sm
    from core.backends.vertex import request as vx

    design = same_configurations(published, 6)
    expected = design.configurations[3]

    static = sm.static_hyperparameters(design, {"region": "us-east-1"}, "s3://b/t.tar.gz")
    tuned = {"config_index": "3"}  # SageMaker's categorical value, as text
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    encoded = {k: json.dumps(v) for k, v in {**static, **tuned}.items()}
    (config_dir / "hyperparameters.json").write_text(json.dumps(encoded), encoding="utf-8")
    sagemaker = parse_config([], {"SM_INPUT_CONFIG_DIR": str(config_dir)})

    vertex_args = vx.trainer_args(design, "gs://b/data")
    vertex = parse_config([*vertex_args, "--config_index=3.0"], {"CLOUD_ML_TRIAL_ID": "1"})

    command = az.trial_arguments(design, ["config_index"]).replace("${{inputs.config_index}}", "3")
    azure = parse_config(shlex.split(command.replace("${{inputs.data}}", str(tmp_path))), {})

    for config in (sagemaker, vertex, azure):
        for name, value in expected.items():
            assert config.params[name] == pytest.approx(value)
        assert config.trial_seed == design.seed + 3


def test_trainer_reads_the_configurations_as_sagemakers_toolkit_passes_them(published) -> None:
    """The training toolkit json-decodes each hyperparameter and puts ``str()`` of the list on
    the command line (Python's repr, not JSON), where it wins over hyperparameters.json."""
    from core.backends.sagemaker import request as sm

    design = same_configurations(published, 3)
    static = sm.static_hyperparameters(design, {"region": "us-east-1"}, "s3://b/t.tar.gz")
    listed = str(json.loads(static["configurations"]))
    assert listed.startswith("[{'")
    config = parse_config(["--config_index", "2", "--configurations", listed], {})
    for name, value in design.configurations[2].items():
        assert config.params[name] == pytest.approx(value)
    with pytest.raises(UsageError, match="--configurations is not a JSON list"):
        parse_config(["--config_index", "0", "--configurations", "[{'a': open}]"], {})


def test_sagemaker_refuses_configurations_longer_than_a_hyperparameter(published) -> None:
    from core.backends.sagemaker import request as sm
    from core.errors import BackendError

    design = same_configurations(published, 60)
    with pytest.raises(BackendError, match="more than the 2,500 SageMaker allows"):
        sm.static_hyperparameters(design, {"region": "us-east-1"}, "s3://b/t.tar.gz")
