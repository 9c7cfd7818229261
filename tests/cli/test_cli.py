"""The foundation's CLI: validate, space, studies, runs, trials and import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "assets" / "specs" / "published_study.json"


def test_validate_ok_and_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(PUBLISHED)]) == 0
    out = capsys.readouterr().out
    assert "ok: published-study" in out
    assert "note: learning_rate spans 0.001 to 0.1 on a linear scale: 91% of" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nspace:\n  - {name: dropout_rate, min: 0.5, max: 0.1}\nstrategy: sa\n")
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "2 problems" in out and "min (0.5) must be less than max" in out
    assert "strategy 'sa' is unknown" in out


def test_errors_are_sentences_not_tracebacks(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "core", "space", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Cannot read the spec file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_space_prints_cardinality_and_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "grid.json"
    data = json.loads(PUBLISHED.read_text())
    data["strategy"] = "grid"
    data["space"][0]["step"] = 0.033
    data["space"][2]["step"] = 0.1
    spec.write_text(json.dumps(data))
    assert main(["space", str(spec), "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "space: 36 configurations" in out
    assert out.count('"batch_size"') == 3 + 1  # the sample lines and the parameter line


def test_import_then_list_and_export(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_in = tmp_path / "console.csv"
    csv_in.write_text(
        "trial,status,objective,duration_s,learning_rate\n"
        "a,completed,0.9,10,0.01\n"
        "b,completed,x,11,0.02\n"
        "c,completed,0.8,12,0.03\n"
    )
    assert main(["import", str(csv_in), "--backend", "vertex"]) == 1  # one bad row
    out = capsys.readouterr().out
    assert "imported 2 trials into run 1" in out and "line 3" in out
    assert main(["runs", "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["backend"] == "vertex" and runs[0]["status"] == "imported"
    out_csv = tmp_path / "trials.csv"
    assert main(["trials", "1", "--out", str(out_csv)]) == 0
    text = out_csv.read_text()
    assert text.splitlines()[0].startswith("study_id,study,run_id,backend")
    assert "0.9" in text and "0.8" in text
    assert main(["studies", "--format", "csv"]) == 0
    assert "console" in capsys.readouterr().out
    assert len(Store().list_trials(1)) == 2
