"""Tests of core.training.datasets: the one registry every dataset fact is read from."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from core import spec
from core.costs import forecasting
from core.training import data, dataformats, model
from core.training.datasets import (
    ALL_FORMATS,
    DATASET_NAMES,
    DATASETS,
    DatasetFacts,
    dataset_facts,
    find_dataset,
    how_to_get,
)

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_frozen_unique_and_in_picker_order() -> None:
    assert DATASET_NAMES == ("digits", "mnist", "fashion_mnist", "cifar10", "custom")
    assert tuple(d.name for d in DATASETS) == DATASET_NAMES
    assert all(isinstance(d, DatasetFacts) for d in DATASETS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS[0].title = "changed"  # type: ignore[misc]
    assert find_dataset("nope") is None and find_dataset("mnist") is dataset_facts("mnist")
    with pytest.raises(KeyError, match="choose one of digits, mnist"):
        dataset_facts("nope")


@pytest.mark.parametrize("facts", DATASETS, ids=lambda d: d.name)
def test_every_row_is_complete_and_consistent(facts: DatasetFacts) -> None:
    assert facts.title and facts.summary.endswith(".") and facts.how_to_get.endswith(".")
    assert facts.formats <= ALL_FORMATS
    sentence = how_to_get(facts.name, "/some/folder")
    assert "{" not in sentence and "}" not in sentence
    if facts.name == "custom":  # everything depends on the user's files
        assert facts.formats == ALL_FORMATS and "/some/folder" in sentence
        assert facts.input_shape is facts.num_classes is facts.train_examples is None
        return
    assert facts.input_shape is not None and len(facts.input_shape) == 3
    assert facts.num_classes is not None and facts.num_classes >= 2
    assert facts.class_names is not None and len(facts.class_names) == facts.num_classes
    assert facts.train_examples is not None and f"{facts.train_examples:,}" in facts.summary
    height, width, _ = facts.input_shape
    assert f"{height}x{width}" in facts.summary
    if facts.test_examples is not None:
        total = facts.train_examples + facts.test_examples
        assert f"{total:,}" in facts.summary and f"{facts.test_examples:,} test" in facts.summary
    if facts.formats:  # file-based: has a folder to put files in, and can be downloaded
        assert "/some/folder" in sentence and facts.downloadable
    else:  # digits ship inside scikit-learn
        assert not facts.downloadable and not facts.keras_cache and not facts.user_subfolders


def test_spec_data_and_forecasting_derive_from_the_registry() -> None:
    assert spec.DATASET_NAMES == data.DATASET_NAMES == DATASET_NAMES
    assert not hasattr(forecasting, "DATASET_FACTS")
    assert [i.name for i in data.available_datasets()] == list(DATASET_NAMES)
    assert tuple(data.DIGIT_CLASSES) == dataset_facts("digits").class_names
    assert tuple(data.FASHION_CLASSES) == dataset_facts("fashion_mnist").class_names
    assert tuple(dataformats.CIFAR10_CLASSES) == dataset_facts("cifar10").class_names
    for facts in DATASETS:
        expected = int(facts.train_examples * 0.8) if facts.train_examples else None
        assert forecasting.train_examples(facts.name, None, 0.2) == expected
    assert forecasting.train_examples("custom", 500, 0.2) == 500
    assert forecasting._known_shape("custom") is None and forecasting._known_shape("x") is None
    assert forecasting._known_shape("cifar10") is dataset_facts("cifar10")


def test_data_reads_places_and_sentences_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    row = dataset_facts("fashion_mnist")
    places = data._places("fashion_mnist", str(tmp_path / "user"))
    assert places[1 : 1 + len(row.user_subfolders)] == [
        tmp_path / "user" / sub for sub in row.user_subfolders
    ]
    assert places[-1] == data.DEBIAN_DATASETS_DIR / str(row.debian_folder)
    folder = tmp_path / "home" / "datasets" / "fashion_mnist"
    assert data._how_to_get("fashion_mnist") == how_to_get("fashion_mnist", folder)
    assert str(folder) in data._how_to_get("fashion_mnist")


def test_model_reads_parameters_from_the_spec() -> None:
    assert model.DEFAULTS == spec.default_params() == model.default_params()
    assert model.OPTIMIZERS is spec.OPTIMIZERS
    assert model.DEFAULT_OPTIONS == spec.MODEL_OPTIONS
    assert set(model.INT_PARAMS) == {n for n, p in spec.KNOWN_PARAMS.items() if p.kind == "int"}
    assert set(model.FLOAT_PARAMS) == {n for n, p in spec.KNOWN_PARAMS.items() if p.kind == "float"}
    assert model.MAX_CONV_BLOCKS == spec.KNOWN_PARAMS["conv_blocks"].hi == 6
    source = (ROOT / "core" / "training" / "model.py").read_text(encoding="utf-8")
    assert '"learning_rate": 1e-3' not in source and "Private copy" not in source


def test_registry_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "import core.training.datasets\n"
        "core = sorted(m for m in sys.modules if m.startswith('core'))\n"
        "heavy = [m for m in ('numpy', 'yaml', 'keras', 'platformdirs') if m in sys.modules]\n"
        "print(core, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['core', 'core.training', 'core.training.datasets'] []"
