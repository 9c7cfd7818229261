"""`python -m core estimate`: the forecast and its basis, per platform."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.cli import main
from core.costs import pricing
from core.spec import StudySpec
from tests.prices import store_calibration

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "assets" / "specs" / "published_study.json")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["estimate", SPEC, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sagemaker_estimate_prints_figures_and_basis(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "--backend", "sagemaker", "--instance", "ml.g4dn.xlarge")
    assert code == 0
    price = pricing.hourly_price("sagemaker", "ml.g4dn.xlarge")
    assert f"price     ${price:.4g}/h" in out
    assert "AWS SageMaker (ml.g4dn.xlarge, us-east-1)" in out
    assert "- Expected time: no earlier trials on digits on ml.g4dn.xlarge" in out
    assert "relative-speed table" in out and "7 waves of up to 3 trials" in out
    assert "- Worst case: none" in out and "worst     none (no time cap)" in out
    assert "vendor list price as recalled, unverified" in out


def test_region_fallback_and_accelerators_are_said(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "--backend",
        "vertex",
        "--instance",
        "n1-standard-8",
        "--accelerator",
        "NVIDIA_TESLA_T4",
        "--accelerator-count",
        "2",
        "--region",
        "europe-west4",
    )
    assert code == 0
    assert "+ 2 x NVIDIA_TESLA_T4" in out
    assert "no europe-west4 price, so the us-central1 price is used" in out


def test_json_output_for_all_platforms(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--backend", "all", "--format", "json", "--no-calibrate")
    assert code == 0
    rows = json.loads(out)
    assert [r["backend"] for r in rows] == ["local", "sagemaker", "vertex", "azure"]
    clouds = [r for r in rows if r["backend"] != "local"]
    for r in clouds:
        assert r["expected_wall_s"] > 0 and r["expected_cost_usd"] > 0 and r["basis"]
    assert rows[0]["price_per_hour"] == 0.0


def test_local_estimate_uses_stored_settings_and_calibration(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.store import Store

    store = Store()
    spec = StudySpec.load(SPEC)
    store_calibration(store, spec, per_epoch_s=1.0, overhead_s=2.0, per_step_s=0.01, steps=6)
    pricing.set_local_rate(store, 1.8)
    store.dispose()
    code, out, _ = run_cli(capsys, "--backend", "local", "--no-calibrate")
    assert code == 0
    assert "a calibration of 30 training steps at batch 64" in out
    assert "Price: this machine at $1.8/h (the local rate set in Settings)" in out
    assert "$0.00 (range" not in out  # a non-zero rate gives a non-zero cost


def test_time_cap_gives_a_worst_case(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data: dict[str, Any] = json.loads(Path(SPEC).read_text())
    data["budget"]["max_minutes"] = 30
    path = tmp_path / "capped.json"
    path.write_text(json.dumps(data))
    assert main(["estimate", str(path), "--backend", "azure"]) == 0
    out = capsys.readouterr().out
    price = pricing.hourly_price("azure", "Standard_DS3_v2")
    assert price is not None
    assert f"${20 * 0.5 * price:.2f}" in out and "per-trial runtime cap" in out


def test_unknown_backend_is_refused(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "estimate", SPEC, "--backend", "gcp"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2 and "invalid choice: 'gcp'" in result.stderr


def test_a_missing_spec_file_is_one_sentence(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["estimate", "nope.json", "--backend", "sagemaker"]) == 2
    err = capsys.readouterr().err
    assert "Cannot read the spec file nope.json" in err and "Traceback" not in err
