"""`python -m core anova`: the study's table from a CSV, JSON with every number, sentences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main

ROOT = Path(__file__).resolve().parents[2]

PLANT_GROWTH = {
    "ctrl": [4.17, 5.58, 5.18, 6.11, 4.50, 4.61, 5.17, 4.53, 5.33, 5.14],
    "trt1": [4.81, 4.17, 4.41, 3.59, 5.87, 3.83, 6.03, 4.89, 4.32, 4.69],
    "trt2": [6.31, 5.12, 5.54, 5.50, 5.37, 5.29, 4.92, 6.15, 5.80, 5.26],
}


@pytest.fixture()
def trials_csv(tmp_path: Path) -> Path:
    """PlantGrowth as a per-trial CSV with a second metric and a second factor."""
    rows = []
    for group, values in PLANT_GROWTH.items():
        for i, v in enumerate(values):
            rows.append(
                {
                    "group": group,
                    "weight": v,
                    "cost_usd": 1.0 + 0.01 * i,
                    "half": "early" if i < 5 else "late",
                }
            )
    path = tmp_path / "trials.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_prints_the_table_and_conclusions(trials_csv: Path, capsys) -> None:
    code = main(["anova", str(trials_csv), "--value", "weight,cost_usd", "--group", "group"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["Analysis", "F-statistic", "(df)", "p-value", "Conclusion"]
    assert lines[1].split() == ["weight", "4.85", "(2,", "27)", "0.016", "Significant"]
    assert lines[2].split()[:2] == ["Cost", "0.00"]
    assert lines[2].endswith("Not significant")
    assert "- weight differs between groups (F(2, 27) = 4.85, p = 0.016)" in out
    assert "One-way ANOVA was used" in out


def test_alpha_and_csv_export(trials_csv: Path, tmp_path: Path, capsys) -> None:
    out_csv = tmp_path / "table.csv"
    argv = ["anova", str(trials_csv), "--value", "weight", "--group", "group"]
    assert main([*argv, "--alpha", "0.01", "--out", str(out_csv)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out_csv, dtype=str)
    assert list(table.columns) == ["Analysis", "F-statistic (df)", "p-value", "Conclusion"]
    assert table.loc[0].tolist() == ["weight", "4.85 (2, 27)", "0.016", "Not significant"]


def test_json_has_every_number(trials_csv: Path, capsys) -> None:
    argv = ["anova", str(trials_csv), "--value", "weight", "--group", "group", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    m = data["metrics"]["weight"]
    assert m["anova"]["f"] == pytest.approx(4.846087862, rel=1e-9)
    assert m["anova"]["df_between"] == 2 and m["anova"]["df_within"] == 27
    assert m["kruskal"]["h"] == pytest.approx(7.988228749, rel=1e-9)
    assert {"welch", "levene", "brown_forsythe", "shapiro", "tukey", "games_howell", "dunn"} <= set(
        m
    )
    assert [r["n"] for r in m["descriptives"]] == [10, 10, 10]
    assert m["chosen_test"] == "anova" and m["posthoc"] == "tukey"
    assert data["table"][0]["p-value"] == "0.016"


def test_second_factor_adds_two_way_rows(trials_csv: Path, capsys) -> None:
    argv = ["anova", str(trials_csv), "--value", "weight", "--group", "group", "--factor", "half"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "weight: group × half" in out
    assert "with half taken into account" in out


def test_details_prints_descriptives_and_posthoc(trials_csv: Path, capsys) -> None:
    argv = ["anova", str(trials_csv), "--value", "weight", "--group", "group", "--details"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ci_low" in out and "weight: tukey" in out and "0.012006" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--value", "nope", "--group", "group"], "Metric column(s) 'nope' not in the table"),
        (["--value", "weight"], "The grouping column 'backend' is not in the table"),
        (
            ["--value", "weight", "--group", "group", "--alpha", "2"],
            "alpha must be between 0 and 1",
        ),
    ],
)
def test_bad_options_are_sentences(trials_csv: Path, capsys, argv, needle) -> None:
    assert main(["anova", str(trials_csv), *argv]) == 2
    assert needle in capsys.readouterr().err


def test_unreadable_files_are_sentences(tmp_path: Path, capsys) -> None:
    assert main(["anova", str(tmp_path / "missing.csv"), "--value", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["anova", str(empty), "--value", "x"]) == 2
    assert "is empty" in capsys.readouterr().err


def test_module_entry_point_runs(trials_csv: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "anova",
            str(trials_csv),
            "--value",
            "weight",
            "--group",
            "group",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Significant" in proc.stdout and "Traceback" not in proc.stderr
