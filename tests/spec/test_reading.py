"""Reading specs: JSON as JSON, YAML 1.2 numbers, and a sentence for every unreadable file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.errors import SpecError
from core.spec import (
    MAX_SPEC_BYTES,
    SEED_MAX,
    StudySpec,
    load_bytes,
    load_text,
    parse_spec,
    read_spec_file,
    spec_problems,
)

BASE: dict[str, Any] = {
    "name": "lr",
    "space": [{"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1}],
    "budget": {"max_trials": 4, "epochs": 2},
}


def refused(data: Any) -> str:
    """The one sentence parse_spec gives for ``data``."""
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert "Traceback" not in str(info.value)
    return "\n".join(info.value.problems)


def with_(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for key in parents:
            target = target[key] if not key.isdigit() else target[int(key)]
        target[last] = value
    return data


# ----------------------------------------------------------------------------- numbers


EXPONENT_JSON = """{
  "name": "exp", "seed": 1E2,
  "dataset": {"name": "digits", "subset": 2e2, "validation_split": 2.5e-1},
  "space": [
    {"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.5e-1, "scale": "log"},
    {"name": "dropout_rate", "type": "float", "min": 1E-1, "max": 4e-1, "step": 5e-2},
    {"name": "batch_size", "type": "choice", "values": [3.2e1, 6.4E1]},
    {"name": "filters", "type": "int", "min": 1.6e1, "max": 6.4e1, "step": 1.6e1}
  ],
  "budget": {"max_trials": 1e1, "parallel_trials": 2E0, "epochs": 3e0,
             "max_minutes": 1.5e1, "max_cost_usd": 2.5E0}
}"""


def check_exponents(spec: StudySpec) -> None:
    assert spec.seed == 100
    assert (spec.dataset.subset, spec.dataset.validation_split) == (200, 0.25)
    lr, dropout, batch, filters = spec.space
    assert (lr.min, lr.max) == (1e-4, 0.15)  # type: ignore[union-attr]
    assert (dropout.min, dropout.max, dropout.step) == (0.1, 0.4, 0.05)  # type: ignore[union-attr]
    assert batch.values == (32, 64)  # type: ignore[union-attr]
    assert (filters.min, filters.max, filters.step) == (16, 64, 16)  # type: ignore[union-attr]
    b = spec.budget
    assert (b.max_trials, b.parallel_trials, b.epochs) == (10, 2, 3)
    assert (b.max_minutes, b.max_cost_usd) == (15.0, 2.5)


def test_exponents_are_numbers_in_every_numeric_field_of_json(tmp_path: Path) -> None:
    check_exponents(StudySpec.from_text(EXPONENT_JSON))
    check_exponents(StudySpec.from_text(EXPONENT_JSON, "json"))
    (tmp_path / "exp.json").write_text(EXPONENT_JSON, encoding="utf-8")
    check_exponents(StudySpec.load(tmp_path / "exp.json"))


def test_yaml_reads_numbers_as_yaml_1_2(tmp_path: Path) -> None:
    yaml_text = """
name: exp
seed: 1E2
dataset: {name: digits, subset: 2e2, validation_split: 2.5e-1}
space:
  - {name: learning_rate, type: float, min: 1e-4, max: +1.5e-1, scale: log}
  - {name: dropout_rate, type: float, min: 1E-1, max: 4e-1, step: 5e-2}
  - {name: batch_size, type: choice, values: [3.2e1, 6.4E1]}
  - {name: filters, type: int, min: 1.6e1, max: 6.4e1, step: 1.6e1}
budget: {max_trials: 1e1, parallel_trials: 2E0, epochs: 3e0, max_minutes: 1.5e1,
         max_cost_usd: 2.5E0}
"""
    check_exponents(StudySpec.from_text(yaml_text))
    (tmp_path / "exp.yaml").write_text(yaml_text, encoding="utf-8")
    check_exponents(StudySpec.load(tmp_path / "exp.yaml"))
    data = load_text("a: 010\nb: 0o17\nc: 0x1f\nd: yes\ne: .inf\nf: 2001-12-14\ng: ~\nh: 1_0\n")
    # YAML 1.2: 010 is ten, yes and dates are text; PyYAML's 1.1 default gives 8, True, a date
    assert data == {
        "a": 10,
        "b": 15,
        "c": 31,
        "d": "yes",
        "e": float("inf"),
        "f": "2001-12-14",
        "g": None,
        "h": "1_0",
    }


def test_json_refuses_repeated_keys_and_nan_with_a_sentence() -> None:
    assert load_text('{"min": +1.5e-3}', "yaml") == {"min": 0.0015}  # YAML's flow JSON
    with pytest.raises(SpecError, match="gives the field 'min' twice"):
        load_text('{"min": 0.1, "min": 0.2}')
    with pytest.raises(SpecError, match="holds NaN, which is not a number JSON allows"):
        load_text('{"seed": NaN}', "json")
    with pytest.raises(SpecError, match="holds -Infinity"):
        load_text('{"seed": -Infinity}')
    with pytest.raises(SpecError, match=r"gives the field 'name' twice in one mapping \(line 2\)"):
        load_text("name: a\nname: b\n", "yaml")
    with pytest.raises(SpecError, match=r"YAML alias \*a at line 2"):
        load_text("a: &a [1, 2]\nb: *a\n")
    with pytest.raises(SpecError, match="The spec is not valid JSON at line 1, column 11"):
        load_text('{"name": [', "json")
    with pytest.raises(SpecError, match="is not valid YAML at line 2"):
        load_text("name: [a\nb: {\n", "yaml")
    with pytest.raises(SpecError, match="more than 4,300 digits"):
        load_text('{"seed": ' + "7" * 5000 + "}")


# ----------------------------------------------------------------------------- files


def test_a_spec_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    spec = tmp_path / "latin1.json"
    spec.write_bytes(json.dumps(with_(name="café"), ensure_ascii=False).encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1\.json is not UTF-8 text \(byte 0xe9"):
        StudySpec.load(spec)
    with pytest.raises(SpecError, match=r"upload\.yaml is not UTF-8"):
        load_bytes(b"name: \xff\xfe\n", "upload.yaml")
    bom = tmp_path / "bom.json"  # a UTF-8 byte-order mark is still UTF-8
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert StudySpec.load(bom).name == "lr"


def test_oversized_spec_files_are_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:  # 66 MB, sparse: reading it would take seconds
        fh.truncate(66_000_000)
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"huge\.json is 66,000,000 bytes, larger than the 1,000"):
        StudySpec.load(huge)
    assert time.perf_counter() - start < 0.5
    just_over = b'{"name": "' + b"x" * MAX_SPEC_BYTES + b'"}'
    with pytest.raises(SpecError, match="larger than the 1,000,000 bytes"):
        load_bytes(just_over, "big.json")
    with pytest.raises(SpecError, match="larger than the 1,000,000 bytes"):
        load_text(just_over.decode())
    with pytest.raises(SpecError, match="Cannot read the spec file"):
        read_spec_file(tmp_path)  # a folder


def test_deep_nesting_is_refused_early_with_a_sentence() -> None:
    deep = '{"name": "x", "space": ' + "[" * 50_000 + "]" * 50_000 + "}"
    for fmt in ("json", "yaml", None):
        start = time.perf_counter()
        with pytest.raises(SpecError, match="nests lists and mappings more than 32 levels"):
            load_text(deep, fmt)  # type: ignore[arg-type]
        assert time.perf_counter() - start < 1.0
    block = "name: x\nspace:\n" + "".join(" " * i + "-\n" for i in range(1, 1300))
    with pytest.raises(SpecError, match="nests lists and mappings"):
        load_text(block, "yaml")  # indentation, not brackets: caught as it recurses
    nested: list[Any] = []
    for _ in range(50_000):  # handed to the API as Python data
        nested = [nested]
    assert "nests lists and mappings more than 32 levels" in refused(with_(space=nested))
    assert [p.field for p in spec_problems(with_(space=nested))] == ["spec"]


# ----------------------------------------------------------------------------- names and types


@pytest.mark.parametrize("bad", [["learning_rate"], {"a": 1}, 3])
def test_a_list_or_mapping_where_a_name_goes_is_a_sentence(bad: Any) -> None:
    message = refused(with_(space__0__name=bad))
    assert "is not a parameter the CNN knows" in message and "space[0].name" in message
    message = refused(with_(objective={"metric": bad}))
    assert "objective.metric" in message and "is unknown; use one of val_accuracy" in message
    message = refused(with_(objective=bad, strategy=bad, dataset={"name": bad}))
    assert "strategy" in message and "dataset.name" in message


def test_values_in_sentences_are_cut_short() -> None:
    message = refused(with_(space__0__name="x" * 10_000))
    assert len(message) < 400 and "..." in message


# ----------------------------------------------------------------------------- ranges


def test_max_trials_10_to_the_20_is_a_sentence(tmp_path: Path) -> None:
    message = refused(with_(budget__max_trials=10**20))
    assert message == (
        "budget.max_trials must be at most 10,000 (ten thousand trials is weeks of training "
        "even for a small CNN); it is a 21-digit number."
    )
    spec = tmp_path / "trials.json"
    spec.write_text(json.dumps(with_(budget__max_trials=10**20)))
    with pytest.raises(SpecError, match="budget.max_trials must be at most 10,000"):
        StudySpec.load(spec)
    assert parse_spec(with_(budget__max_trials=10_000)).budget.max_trials == 10_000


def test_epochs_caps_and_subset_have_maxima() -> None:
    assert "budget.epochs must be at most 1,000" in refused(with_(budget__epochs=10**12))
    assert parse_spec(with_(budget__epochs=1_000)).budget.epochs == 1_000
    assert "budget.max_minutes must be at most 525,600 (a year)" in refused(
        with_(budget__max_minutes=1e300)
    )
    assert "budget.max_cost_usd must be at most 1,000,000" in refused(
        with_(budget__max_cost_usd=1e12)
    )
    assert "dataset.subset must be at most 1,000,000,000" in refused(
        with_(dataset={"name": "digits", "subset": 10**30})
    )


def test_seed_fits_numpy_and_tensorflow_with_every_trial_index() -> None:
    message = refused(with_(seed=10**30))
    assert message.startswith("seed must be at most 4,294,967,292 (trial n trains with seed + n")
    assert "it is a 31-digit number" in message
    top = SEED_MAX - (BASE["budget"]["max_trials"] - 1)  # the last trial trains with SEED_MAX
    assert parse_spec(with_(seed=top)).seed == top
    assert "seed must be at most" in refused(with_(seed=top + 1))
    assert "seed must be 0 or more" in refused(with_(seed=-1))
    assert parse_spec(with_(seed=0)).seed == 0
    import numpy as np

    np.random.RandomState(top + BASE["budget"]["max_trials"] - 1)  # the largest seed used fits
    with pytest.raises(ValueError):
        np.random.RandomState(SEED_MAX + 1)  # why the bound is what it is


def test_names_are_capped() -> None:
    assert parse_spec(with_(name="n" * 100)).name == "n" * 100
    message = refused(with_(name="n" * 50_000_000))
    assert message.startswith("name is 50,000,000 characters long") and len(message) < 200
    assert "dataset.path must be a file or folder path" in refused(
        with_(dataset={"name": "custom", "path": "p" * 5000})
    )


def test_a_float_step_that_makes_a_huge_grid_is_refused_at_once() -> None:
    start = time.perf_counter()
    message = refused(with_(space__0__step=1e-12, strategy="grid"))
    assert time.perf_counter() - start < 1.0
    assert "cuts 0.001..0.1 into more than 10,000 grid points" in message
    huge_choice = with_(space=[{"name": "batch_size", "type": "choice", "values": [64] * 200_000}])
    start = time.perf_counter()
    assert "lists 64 more than once" in refused(huge_choice)
    assert time.perf_counter() - start < 2.0  # counted once, not 200,000 x 200,000 times
