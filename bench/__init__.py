"""Benchmarks: each ``bench_<name>.py`` measures one part, writes its figures as JSON and prints a summary."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def write_results(path: Path, figures: dict[str, Any]) -> None:
    """Write a benchmark's figures as indented JSON to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


def wait_healthy(proc: subprocess.Popen[Any], port: int, poll_s: float = 0.5) -> None:
    """Wait (at most 120 s) until the Streamlit server ``proc`` on ``port`` answers its
    health check; kill it and raise RuntimeError when it does not."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(poll_s)
    proc.kill()
    raise RuntimeError("streamlit did not start; see its log")


def stop_server(proc: subprocess.Popen[Any]) -> None:
    """Stop a server process: terminate, then kill it if it has not ended in 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
