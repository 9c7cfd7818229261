"""The framework-version matrix: the container contract tests under each target container's
Python, TensorFlow, Keras and NumPy (``make cloud-contract``).

Each target is a training image of assets/containers.json: SageMaker's TensorFlow DLC, Azure
ML's curated TensorFlow environment, and CloudTune's custom container (its base's Python with
requirements.txt's pins, which is this project's own .venv). A target gets one virtual
environment in .venv-contract/<target>, made with pyenv's interpreter of the image's Python
and the image's versions from the local PyPI mirror (what pip is configured with here), plus
mlflow-skinny at requirements.txt's pin (the trainer's Azure ML reporting). tests/contract
then runs with the trainer's subprocess under that interpreter (CLOUDTUNE_CONTRACT_PYTHON);
the services' side stays in this project's .venv.

A target whose Python or wheels cannot be had here is reported as unavailable, with pip's or
pyenv's reason, and does not fail the run; a failing contract test does (exit status 1).
Results: bench/results/cloud_contract.json.

Usage: ``python -m bench.cloud_contract [--target NAME ...] [--workers N] [--rebuild]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.backends import containers  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cloud_contract.json"
VENVS = ROOT / ".venv-contract"
TESTS = "tests/contract"
STAMP = ".cloudtune-requirements"
TRAINER_EXTRAS = ("mlflow-skinny",)
"""Installed beside the image's frameworks: what the trainer's Azure ML reporting imports."""
CLOUDS = ("sagemaker", "vertex", "azure")


@dataclass
class Target:
    """One training image: where it runs, its catalog entry and how to stand it in here."""

    name: str
    cloud: str
    image: containers.Image
    use_project_venv: bool = False
    requirements: list[str] = field(default_factory=list)


def targets() -> list[Target]:
    """The matrix's targets, read from the catalog (so they follow it when it changes)."""
    dlc = next(i for i in containers.prebuilt("sagemaker") if i.accelerator == "cpu")
    curated = containers.prebuilt("azure")[0]
    custom = containers.custom_base("vertex")
    return [
        Target("sagemaker-dlc", "sagemaker", dlc),
        Target("azure-curated", "azure", curated),
        Target("custom-container", "vertex, azure", custom, use_project_venv=True),
    ]


def pin(package: str, text: str) -> str | None:
    """A pip requirement for a catalog version: ``2.16.2`` exactly, ``2.1+`` as the lowest
    release of 2.1 (the oldest the image may hold); None where the catalog names no number
    (``3 (TensorFlow 2.21's dependency)``: left to pip's resolver)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)(\+?)", text.strip())
    if not match:
        return None
    version, plus = match.groups()
    if plus:
        parts = version.split(".")
        upper = ".".join([*parts[:-1], str(int(parts[-1]) + 1)])
        return f"{package}>={version},<{upper}"
    return f"{package}=={version}" if version.count(".") >= 2 else f"{package}=={version}.*"


def requirements_for(image: containers.Image) -> list[str]:
    """The pip lines that stand for ``image``'s frameworks, and the trainer's extras."""
    pins = {
        line.split("==")[0]: line
        for line in containers.container_requirements("azure")
        if "==" in line
    }
    lines = [
        pin("tensorflow-cpu", image.tensorflow),
        pin("keras", image.keras),
        pin("numpy", image.numpy),
    ]
    lines += [pins.get(name, name) for name in TRAINER_EXTRAS]
    return [line for line in lines if line]


def pyenv_python(version: str) -> Path | None:
    """The newest pyenv interpreter of ``version`` (``3.12`` -> ~/.pyenv/versions/3.12.1)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    for folder in root.glob(f"{version}.*") if root.is_dir() else []:
        python = folder / "bin" / "python"
        tail = folder.name[len(version) + 1 :]
        if python.is_file() and tail.isdigit():
            found.append((int(tail), python))
    return max(found)[1] if found else None


def _tail(text: str, lines: int = 3) -> str:
    """The last lines of a tool's output, its ERROR lines where it wrote any."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in kept if line.startswith("ERROR")]
    return " / ".join((errors or kept)[-lines:])


def prepare(target: Target, rebuild: bool) -> tuple[Path | None, str | None]:
    """Make (or reuse) the target's virtual environment; return (its python, None) or
    (None, why it cannot be had here)."""
    if target.use_project_venv:
        return Path(sys.executable), None
    base = pyenv_python(target.image.python)
    if base is None:
        return None, f"no Python {target.image.python} here (pyenv versions has none)"
    target.requirements = requirements_for(target.image)
    venv = VENVS / target.name
    python = venv / "bin" / "python"
    wanted = json.dumps({"python": str(base), "requirements": target.requirements})
    stamp = venv / STAMP
    if not rebuild and python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python, None
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [str(base), "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", "--only-binary=:all:"]
        + target.requirements,
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            shutil.rmtree(venv, ignore_errors=True)
            what = " ".join(a for a in step[1:] if not a.startswith("-"))
            return None, f"`{what}` failed here: {_tail(done.stderr or done.stdout)}"
    stamp.write_text(wanted)
    return python, None


def installed(python: Path) -> dict[str, str | None]:
    """The versions the target's interpreter really has."""
    code = (
        "import importlib.metadata as m, json, platform\n"
        "def v(n):\n"
        "    try:\n        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n        return None\n"
        "print(json.dumps({'python': platform.python_version(),"
        " 'tensorflow': v('tensorflow-cpu') or v('tensorflow'), 'keras': v('keras'),"
        " 'numpy': v('numpy'), 'mlflow-skinny': v('mlflow-skinny') or v('mlflow')}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    out: dict[str, str | None] = json.loads(done.stdout)
    return out


def run_tests(python: Path, workers: int) -> tuple[dict[str, dict[str, Any]], str]:
    """Run tests/contract with the trainer under ``python``; return per-cloud outcomes."""
    with tempfile.TemporaryDirectory(prefix="cloud-contract-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS]
        command += ["--junitxml", str(report)]
        if workers > 1:
            command += ["-n", str(workers), "--dist", "loadfile"]
        env = {**os.environ, "CLOUDTUNE_CONTRACT_PYTHON": str(python)}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if not report.is_file():
            return {}, _tail(done.stdout + done.stderr, 10)
        outcomes = _outcomes(ET.parse(report).getroot())
    return outcomes, _tail(done.stdout, 1)


def _outcomes(root: ET.Element) -> dict[str, dict[str, Any]]:
    clouds: dict[str, dict[str, Any]] = {}
    for case in root.iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        cloud = module.removeprefix("test_").removesuffix("_contract")
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = (element.get("message") or "").splitlines()
                outcome += f": {message[0][:300]}" if message else ""
                break
        entry = clouds.setdefault(cloud, {"passed": 0, "failed": 0, "tests": {}})
        entry["tests"][case.get("name", "?")] = outcome
        entry["passed" if outcome == "passed" else "failed"] += 1
    return clouds


def _commit() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix; return 1 when a contract test failed, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="run only these targets")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (1: none)")
    parser.add_argument("--rebuild", action="store_true", help="remake the virtual environments")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [t for t in targets() if not args.target or t.name in args.target]
    started = time.perf_counter()
    rows = []
    for target in chosen:
        print(f"== {target.name} ({target.image.uri})", flush=True)
        t0 = time.perf_counter()
        python, reason = prepare(target, args.rebuild)
        setup_s = time.perf_counter() - t0
        row: dict[str, Any] = {
            "target": target.name,
            "clouds_of_image": target.cloud,
            "image": target.image.uri,
            "catalog": {
                "python": target.image.python,
                "tensorflow": target.image.tensorflow,
                "keras": target.image.keras,
                "numpy": target.image.numpy,
                "source": target.image.source,
                "checked": target.image.checked,
            },
            "requirements": target.requirements or ["requirements.txt (this project's .venv)"],
            "setup_seconds": round(setup_s, 1),
        }
        if python is None:
            row.update(status="unavailable", reason=reason)
            print(f"   unavailable: {reason}", flush=True)
            rows.append(row)
            continue
        row["interpreter"] = (
            os.path.relpath(python, ROOT) if python.is_relative_to(ROOT) else str(python)
        )
        row["installed"] = installed(python)
        t1 = time.perf_counter()
        clouds, summary = run_tests(python, args.workers)
        row["test_seconds"] = round(time.perf_counter() - t1, 1)
        row["clouds"] = clouds
        failed = sum(c["failed"] for c in clouds.values()) if clouds else 1
        row["status"] = "passed" if clouds and not failed else "failed"
        if not clouds:
            row["reason"] = f"pytest wrote no report: {summary}"
        print(f"   {row['installed']}: {summary} ({row['test_seconds']} s)", flush=True)
        rows.append(row)
    total = time.perf_counter() - started
    result = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "command": "make cloud-contract (python -m bench.cloud_contract)",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "runner_python": platform.python_version(),
            "load_before": os.getloadavg()[0],
        },
        "workers": args.workers,
        "total_seconds": round(total, 1),
        "targets": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(_table(rows))
    print(f"total {total:.0f} s; results in {args.out.relative_to(ROOT)}")
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def _table(rows: list[dict[str, Any]]) -> str:
    head = "| target | Python | TensorFlow | Keras | NumPy | " + " | ".join(CLOUDS) + " |"
    lines = [head, "|" + "---|" * (5 + len(CLOUDS))]
    for r in rows:
        have = r.get("installed") or {}
        if r["status"] == "unavailable":
            cells = [f"unavailable: {r['reason']}"] + [""] * (len(CLOUDS) - 1)
        else:
            cells = []
            for cloud in CLOUDS:
                c = (r.get("clouds") or {}).get(cloud)
                total = c["passed"] + c["failed"] if c else 0
                cells.append(f"{c['passed']}/{total} pass" if c else "not run")
        versions = [have.get(k) or "-" for k in ("python", "tensorflow", "keras", "numpy")]
        lines.append("| " + " | ".join([r["target"], *versions, *cells]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
