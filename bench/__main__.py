"""`python -m bench [NAME ...]`: run every benchmark (``bench/bench_<name>.py``) or the named ones.

Each runs in its own process (``python -m bench.bench_<name>``) with its default options, so
one benchmark's imports and memory never colour another's figures. The exit status is the
number of benchmarks that failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Return the names of the benchmarks in this folder (``bench_stats.py`` -> ``stats``)."""
    return sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks named in ``argv`` (all when none); return how many failed."""
    names = list(sys.argv[1:] if argv is None else argv) or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(discover())}")
        return 2
    failed = []
    for name in names:
        print(f"== bench_{name}", flush=True)
        started = time.time()
        code = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=HERE.parent)
        print(f"== bench_{name}: exit {code} after {time.time() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
