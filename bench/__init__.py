"""Benchmarks: each ``bench_<name>.py`` measures one part, writes its figures as JSON and prints a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(path: Path, figures: dict[str, Any]) -> None:
    """Write a benchmark's figures as indented JSON to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
