"""Tests of the cloud entry script and its bundle: parsing, paths, protocols, real subprocess runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.training import bundle, train
from core.training.train import UsageError
from tests.contract.services import write_digits

ROOT = Path(__file__).resolve().parents[2]
VAL_RE = re.compile(r"val_accuracy: ([0-9\.]+)")
PLATFORM_PREFIXES = ("SM_", "AIP_", "CLOUD_ML_", "MLFLOW_", "AZUREML_", "PYTHONPATH")


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SageMaker-style channel folder holding 200 real digits as an MNIST-like .npz."""
    return write_digits(tmp_path_factory.mktemp("channel"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_PREFIXES)}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _module(*args: str) -> list[str]:
    return [sys.executable, "-m", "core.training.train", *args]


def _accuracies(stdout: str) -> list[float]:
    return [float(v) for v in VAL_RE.findall(stdout)]


# ---------------------------------------------------------------- parsing (no TensorFlow)


@pytest.mark.parametrize(
    ("raw", "value"),
    [("64.0", 64.0), ("64", 64), ('"adam"', "adam"), ("adam", "adam"), ("1e-3", 0.001)],
)
def test_decode_value(raw: str, value: object) -> None:
    decoded = train.decode_value(raw)
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize(
    "argv",
    [
        ["--learning_rate", "0.01", "--batch_size", "32.0", "--optimizer", "sgd", "--epochs", "3"],
        ["--learning_rate=0.01", "--batch_size=32.0", "--optimizer=sgd", "--epochs=3.0"],
        ["--learning-rate=0.01", "--batch-size", "32", "--optimizer", '"sgd"', "--epochs=3"],
    ],
)
def test_both_argument_styles_give_typed_params(argv: list[str]) -> None:
    cfg = train.parse_config([*argv, "--dataset", "digits"], {})
    assert cfg.params["learning_rate"] == 0.01
    assert cfg.params["batch_size"] == 32 and isinstance(cfg.params["batch_size"], int)
    assert cfg.params["optimizer"] == "sgd"
    assert cfg.params["conv_blocks"] == 2  # default
    assert cfg.epochs == 3 and cfg.dataset == "digits" and cfg.ignored == []


def test_sagemaker_hyperparameters_file_is_read_and_cli_wins(tmp_path: Path) -> None:
    hps = {"learning_rate": "0.5", "optimizer": '"rmsprop"', "conv_blocks": "3", "epochs": "4"}
    hps["sagemaker_program"] = '"train.py"'
    (tmp_path / "hyperparameters.json").write_text(json.dumps(hps))
    env = {"SM_INPUT_CONFIG_DIR": str(tmp_path)}
    cfg = train.parse_config(["--learning_rate", "0.02", "--dataset", "digits"], env)
    assert cfg.params["learning_rate"] == 0.02  # command line wins
    assert cfg.params["optimizer"] == "rmsprop" and cfg.params["conv_blocks"] == 3
    assert cfg.epochs == 4 and cfg.ignored == []


def test_unknown_arguments_are_ignored_not_fatal() -> None:
    cfg = train.parse_config(["--model_dir", "s3://bucket/job/model", "--mystery=1"], {})
    assert cfg.ignored == ["--mystery=1"]
    assert cfg.model_dir == Path("outputs")  # remote --model_dir skipped


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--batch_size", "32.5"], "batch_size must be a whole number"),
        (["--optimizer", "adagrad"], "optimizer must be one of adam, sgd, rmsprop"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--validation-split", "2"], "--validation-split must be a fraction"),
        (["--learning_rate"], "expected one argument"),
        (["--data-dir", "s3://bucket/data"], "remote URI"),
    ],
)
def test_bad_arguments_raise_usage_error(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        train.parse_config(argv, {})


def test_main_prints_one_error_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--batch_size", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "batch_size" in err[0]


def test_main_reports_missing_data_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train.main(["--data-dir", str(tmp_path / "nowhere"), "--model-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]


def test_data_dir_precedence_and_gcs_mount(tmp_path: Path) -> None:
    gcs = tmp_path / "gcs"
    (gcs / "bkt" / "data").mkdir(parents=True)
    vertex = {"AIP_TRAINING_DATA_URI": "gs://bkt/data/training-*"}
    assert train.resolve_data_dir(None, vertex, gcs) == str(gcs / "bkt" / "data")
    assert train.resolve_data_dir("gs://bkt/x", {}, gcs) == str(gcs / "bkt" / "x")
    both = {**vertex, "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train"}
    assert train.resolve_data_dir(None, both, gcs) == "/opt/ml/input/data/train"
    assert train.resolve_data_dir("/mine", both, gcs) == "/mine"
    azure = {"AZUREML_DATAREFERENCE_digits": "/mnt/azureml/digits"}
    assert train.resolve_data_dir(None, azure, gcs) == "/mnt/azureml/digits"
    assert train.resolve_data_dir(None, {}, gcs) is None


def test_gcs_mount_can_be_redirected(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    env = {"CLOUDTUNE_GCS_ROOT": str(tmp_path), "AIP_MODEL_DIR": "gs://bkt/job/3/model/"}
    cfg = train.parse_config(["--data-dir=gs://bkt/data"], env)
    assert cfg.data_dir == str(tmp_path / "bkt" / "data")
    assert cfg.model_dir == tmp_path / "bkt" / "job" / "3" / "model"
    assert train.parse_config(["--data-dir=gs://bkt/data"], {}).data_dir == "/gcs/bkt/data"


def test_model_dir_precedence(tmp_path: Path) -> None:
    gcs = tmp_path / "gcs"
    (gcs / "mounted").mkdir(parents=True)
    sm = {"SM_MODEL_DIR": "/opt/ml/model", "AIP_MODEL_DIR": "gs://mounted/m"}
    assert train.resolve_model_dir("/cli", sm, gcs) == Path("/opt/ml/model")
    mounted = {"AIP_MODEL_DIR": "gs://mounted/m"}
    assert train.resolve_model_dir("/cli", mounted, gcs) == gcs / "mounted" / "m"
    unmounted = {"AIP_MODEL_DIR": "gs://elsewhere/m"}
    assert train.resolve_model_dir("/cli", unmounted, gcs) == Path("/cli")
    assert train.resolve_model_dir(None, unmounted, gcs) == Path("outputs")


def test_hypertune_file_follows_the_library_format(tmp_path: Path) -> None:
    path = tmp_path / "hp" / "output.metrics"
    env = {"CLOUD_ML_HP_METRIC_FILE": str(path), "CLOUD_ML_TRIAL_ID": "3"}
    reporter = train.HypertuneReporter(env)
    for step in range(1, 106):
        reporter.report("val_accuracy", step / 1000, step)
    lines = path.read_text().splitlines()
    assert len(lines) == 100  # the library keeps the last 100 entries
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert set(last) == {"global_step", "timestamp", "trial", "val_accuracy"}
    assert last["val_accuracy"] == "0.105" and last["global_step"] == "105"
    assert last["trial"] == "3" and isinstance(last["timestamp"], float)
    assert first["global_step"] == "6"
    assert list(last) == sorted(last)  # keys written sorted
    reporter.report("", 0.5, None)
    assert json.loads(path.read_text().splitlines()[-1])["training/hptuning/metric"] == "0.5"


def test_metric_definitions_match_only_their_own_line() -> None:
    lines = train.epoch_lines(
        2, {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9}, 1.0
    )
    text = "\n".join(lines)
    for definition in train.METRIC_DEFINITIONS:
        found = re.findall(definition["Regex"], text)
        assert len(found) == 1, definition
    assert "val_accuracy: 0.9000" in lines


def test_mlflow_failure_does_not_stop_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # a stray default store would land here, not in the repo
    assert train.MlflowLogger.start({}, {"a": 1}) is None  # not configured: silent
    logger = train.MlflowLogger.start({"MLFLOW_TRACKING_URI": "bogus-scheme://x"}, {"a": 1})
    assert logger is None
    assert "MLflow logging is off" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- real runs in subprocesses


@pytest.mark.slow
def test_sagemaker_style_run(npz_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text(json.dumps({"optimizer": '"sgd"'}))
    model_dir = tmp_path / "model"
    env = _env(
        SM_CHANNEL_TRAIN=str(npz_dir),
        SM_MODEL_DIR=str(model_dir),
        SM_INPUT_CONFIG_DIR=str(config),
        CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "hp.metrics"),
    )
    done = _run(
        _module("--learning_rate", "0.01", "--batch_size", "32.0", "--epochs", "1"), env, ROOT
    )
    accuracies = _accuracies(done.stdout)
    assert len(accuracies) == 1 and 0.0 <= accuracies[0] <= 1.0
    assert "epoch: 1" in done.stdout.splitlines()
    params = json.loads(done.stdout.split("params: ", 1)[1].splitlines()[0])
    assert params["batch_size"] == 32 and params["optimizer"] == "sgd"
    assert (model_dir / "model.keras").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert f"{metrics['val_accuracy']:.4f}" == f"{accuracies[0]:.4f}"
    assert metrics["epochs"] == 1 and metrics["params"]["learning_rate"] == 0.01


@pytest.mark.slow
def test_vertex_style_run_writes_hypertune_metrics(npz_dir: Path, tmp_path: Path) -> None:
    metrics_file = tmp_path / "hypertune" / "output.metrics"
    env = _env(CLOUD_ML_HP_METRIC_FILE=str(metrics_file), CLOUD_ML_TRIAL_ID="7")
    args = ["--learning_rate=0.01", "--batch_size=32.0", "--epochs=2", f"--data-dir={npz_dir}"]
    done = _run(_module(*args, f"--model-dir={tmp_path / 'model'}"), env, ROOT)
    accuracies = _accuracies(done.stdout)
    entries = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert [e["global_step"] for e in entries] == ["1", "2"]
    assert all(set(e) == {"global_step", "timestamp", "trial", "val_accuracy"} for e in entries)
    assert all(e["trial"] == "7" for e in entries)
    reported = [float(e["val_accuracy"]) for e in entries]
    assert [f"{v:.4f}" for v in reported] == [f"{v:.4f}" for v in accuracies]


@pytest.mark.slow
def test_azure_style_run_logs_to_mlflow(npz_dir: Path, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    uri = f"file:{tmp_path / 'mlruns'}"
    env = _env(
        PYTHONPATH=str(ROOT),  # run from tmp_path so ./outputs lands there
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_ALLOW_FILE_STORE="true",  # MLflow 3 refuses file stores unless told
        CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "hp.metrics"),
    )
    args = ["--learning_rate", "0.01", "--batch_size", "32", "--epochs", "2"]
    done = _run(_module(*args, "--data-dir", str(npz_dir)), env, tmp_path)
    assert (tmp_path / "outputs" / "model.keras").is_file()  # Azure's default folder
    accuracies = _accuracies(done.stdout)
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        runs = client.search_runs(["0"])
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["learning_rate"] == "0.01" and run.data.params["batch_size"] == "32"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2]
    assert [f"{m.value:.4f}" for m in history] == [f"{v:.4f}" for v in accuracies]
    assert {"val_loss", "train_loss", "train_accuracy"} <= set(run.data.metrics)


# ---------------------------------------------------------------- the bundle


def test_bundle_holds_the_trainer_and_a_stable_digest(tmp_path: Path) -> None:
    folder = bundle.build_bundle(tmp_path / "b", requirements=["mlflow-skinny"])
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {"train.py", "requirements.txt", "core/__init__.py", "core/errors.py"}
    expected |= {"core/training/model.py", "core/training/data.py", "core/training/__init__.py"}
    assert expected | {"core/training/train.py"} <= files
    assert not any(f.startswith(("core/backends", "core/store")) for f in files)
    lines = (folder / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["mlflow-skinny"]
    digest = bundle.bundle_digest(folder)
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "core" / "__pycache__").mkdir()
    (copy / "core" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert bundle.bundle_digest(copy) == digest and len(digest) == 64
    (copy / "core" / "model.py").write_text("changed")
    assert bundle.bundle_digest(copy) != digest
    with pytest.raises(FileExistsError, match="not empty"):
        bundle.build_bundle(folder)


@pytest.mark.slow
def test_bundle_runs_outside_the_repository(npz_dir: Path, tmp_path: Path) -> None:
    folder = bundle.build_bundle(tmp_path / "bundle")
    work = tmp_path / "work"
    work.mkdir()
    env = _env(
        SM_CHANNEL_TRAIN=str(npz_dir),
        SM_MODEL_DIR=str(work / "model"),
        CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "hp.metrics"),
    )
    args = ["--learning_rate", "0.01", "--batch_size", "32.0", "--epochs", "1"]
    done = _run([sys.executable, str(folder / "train.py"), *args], env, work)
    assert f"from {folder / 'core'}" in done.stdout.splitlines()[0]
    assert len(_accuracies(done.stdout)) == 1
    assert (work / "model" / "model.keras").is_file()


def test_objective_and_model_options_are_parsed_and_checked(tmp_path: Path) -> None:
    from core.training.train import HypertuneReporter, UsageError, parse_config

    env = {"SM_MODEL_DIR": str(tmp_path)}
    config = parse_config(["--objective=val_loss", "--batch_norm", "False"], env)
    assert config.objective == "val_loss" and config.options == {"batch_norm": False}
    assert parse_config([], env).options == {}
    with pytest.raises(UsageError, match="--objective 'f1' is not a metric"):
        parse_config(["--objective", "f1"], env)
    with pytest.raises(UsageError, match="--batch_norm must be true or false"):
        parse_config(["--batch_norm=maybe"], env)
    out = tmp_path / "hp.metrics"
    reporter = HypertuneReporter({"CLOUD_ML_HP_METRIC_FILE": str(out)}, "accuracy")
    reporter.sink(1, {"train_accuracy": 0.5, "val_accuracy": 0.4})
    line = json.loads(out.read_text().splitlines()[0])
    assert line["accuracy"] == "0.5" and "val_accuracy" not in line
