"""CLI on bad input: validate, space, tune and anova answer with a sentence, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.stats import compare
from core.cli import main
from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "name": "exp",
    "dataset": {"name": "digits", "subset": 2e2},
    "strategy": "random",
    "space": [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-2, "scale": "log"}],
    "budget": {"max_trials": 1e0, "epochs": 1e0},
}
EXPONENT_JSON = json.dumps(SPEC).replace("0.0001", "1e-4").replace("0.01", "1E-2")


def db(home: Path) -> str:
    return f"sqlite:///{home / 'cloudtune.db'}"


def cli(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m core`` as a user would, in its own process, on a store under ``home``."""
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "core", "--db", db(home), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "CLOUDTUNE_HOME": str(home), "HOME": str(home)},
    )


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_validate_and_space_read_exponents_in_json_and_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "1e-4" in EXPONENT_JSON and "1E-2" in EXPONENT_JSON
    spec = write(tmp_path / "exp.json", EXPONENT_JSON)
    assert main(["validate", str(spec)]) == 0
    assert "ok: exp (random, 1 trials" in capsys.readouterr().out
    yaml_spec = write(
        tmp_path / "exp.yaml",
        "name: exp\nspace:\n  - {name: learning_rate, min: 1e-4, max: +1.5e-3, scale: log}\n",
    )
    assert main(["space", str(yaml_spec), "-n", "4"]) == 0
    out = capsys.readouterr().out
    assert '"min": 0.0001, "max": 0.0015' in out
    values = [json.loads(line)["learning_rate"] for line in out.splitlines()[-4:]]
    assert all(1e-4 <= v <= 1.5e-3 for v in values)


@pytest.mark.parametrize(
    ("name", "content", "sentence"),
    [
        ("latin1.json", '{"name": "café"}'.encode("latin-1"), "latin1.json is not UTF-8 text"),
        (
            "deep.json",
            '{"name": "x", "space": ' + "[" * 50_000 + "]" * 50_000 + "}",
            "deep.json nests lists and mappings more than 32 levels deep",
        ),
        ("big.yaml", "name: x\n" + "#" * 1_000_000, "big.yaml is 1,000,008 bytes, larger than"),
        ("nan.json", '{"name": "x", "seed": NaN}', "nan.json holds NaN"),
    ],
)
def test_unreadable_specs_are_sentences_in_validate_and_tune(
    tmp_path: Path, name: str, content: str | bytes, sentence: str
) -> None:
    spec = write(tmp_path / name, content)
    for command in ("validate", "tune"):
        proc = cli(command, str(spec), home=tmp_path / "home")
        assert proc.returncode == 2, proc.stderr
        assert sentence in proc.stderr and "Traceback" not in proc.stderr
    assert Store(db(tmp_path / "home")).list_runs() == []


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"budget": {"max_trials": 10**20}}, "budget.max_trials must be at most 10,000"),
        ({"budget": {"epochs": 10**12}}, "budget.epochs must be at most 1,000"),
        ({"seed": 10**30}, "seed must be at most 4,294,967,295"),
        ({"name": "n" * 1_000}, "name is 1,000 characters long"),
        ({"space": [{"name": ["a"], "type": "float"}]}, "space[0].name ['a'] is not a parameter"),
        ({"objective": {"metric": ["a"]}}, "objective.metric ['a'] is unknown"),
    ],
)
def test_specs_that_cannot_run_are_refused_by_validate_and_tune(
    tmp_path: Path, changes: dict, sentence: str
) -> None:
    spec = write(tmp_path / "spec.json", json.dumps({**SPEC, **changes}))
    proc = cli("validate", str(spec), home=tmp_path / "home")
    assert proc.returncode == 1 and sentence in proc.stdout, proc.stdout + proc.stderr
    proc = cli("tune", str(spec), home=tmp_path / "home")
    assert proc.returncode == 2 and sentence in proc.stderr and "Traceback" not in proc.stderr


def test_anova_near_the_largest_float_is_a_sentence(tmp_path: Path) -> None:
    rows = [("a", 1e308), ("a", -1e308), ("a", 1.5e308), ("b", 1.7e308), ("b", -1.7e308)]
    rows += [("b", 1e307), ("c", 1e308), ("c", 1.2e308), ("c", -1.1e308)]
    csv = tmp_path / "big.csv"
    pd.DataFrame(rows, columns=["backend", "v"]).to_csv(csv, index=False)
    for extra in ([], ["--json"], ["--details"]):
        proc = cli("anova", str(csv), "--value", "v", *extra, home=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "v cannot be compared: its values reach 1.7e+308" in proc.stdout
        assert "rescale the column" in proc.stdout


def test_anova_on_large_but_safe_values_equals_the_unscaled_result() -> None:
    rng = np.random.default_rng(7)
    groups = np.repeat(["aws", "gcp", "azure"], 20)
    values = np.concatenate([rng.normal(m, 1.0, 20) for m in (10.0, 10.8, 10.2)])
    plain = compare(pd.DataFrame({"backend": groups, "v": values}), "v").metrics["v"]
    big = compare(pd.DataFrame({"backend": groups, "v": values * 1e70}), "v").metrics["v"]
    assert plain.anova is not None and big.anova is not None
    assert big.anova.f == pytest.approx(plain.anova.f, rel=1e-9)
    assert big.anova.p == pytest.approx(plain.anova.p, rel=1e-9)
    assert big.welch is not None and plain.welch is not None
    assert big.welch.p == pytest.approx(plain.welch.p, rel=1e-9)
    assert big.games_howell is not None and plain.games_howell is not None
    assert big.games_howell["p_adj"].tolist() == pytest.approx(plain.games_howell["p_adj"].tolist())
    ratio = big.descriptives["sd"] / plain.descriptives["sd"]
    assert ratio.tolist() == pytest.approx([1e70] * 3)
    assert big.kruskal is not None and big.kruskal.p == pytest.approx(plain.kruskal.p)
    assert (
        "cannot be compared"
        in compare(pd.DataFrame({"backend": groups, "v": values * 1e76}), "v")
        .metrics["v"]
        .conclusion
    )


@pytest.mark.slow
def test_tune_runs_a_json_spec_written_with_exponents(tmp_path: Path) -> None:
    spec = write(tmp_path / "exp.json", EXPONENT_JSON)
    proc = cli("tune", str(spec), home=tmp_path / "home")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "run 1 completed: 1 completed" in proc.stdout
    store = Store(db(tmp_path / "home"))
    (trial,) = store.list_trials(1)
    assert 1e-4 <= trial.params["learning_rate"] <= 1e-2
