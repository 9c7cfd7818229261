"""``streamlit run`` with every script run profiled by cProfile (``bench_pages --profile``).

``python -m bench._profiled_server run app.py ...`` takes the arguments of ``streamlit``. Each
script run (``ScriptRunner._run_script``, in the script thread: the page's own code, Streamlit's
commands and the serialising of what it sends) is written to
``$BENCH_PAGES_PROFILE_DIR/<start>-<end>.prof``, the times in ``time.monotonic()`` seconds, so
the benchmark can tell which of its clicks each run answered.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from pathlib import Path
from typing import Any

from streamlit.runtime.scriptrunner import script_runner
from streamlit.web import cli

OUT = Path(os.environ["BENCH_PAGES_PROFILE_DIR"])
_run_script = script_runner.ScriptRunner._run_script


def _profiled(self: Any, rerun_data: Any) -> None:
    start = time.monotonic()
    profile = cProfile.Profile()
    profile.enable()
    try:
        _run_script(self, rerun_data)
    finally:
        profile.disable()
        profile.dump_stats(OUT / f"{start:.6f}-{time.monotonic():.6f}.prof")


script_runner.ScriptRunner._run_script = _profiled  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())
