"""core.preload: the results pages' imports, once, in the background."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, home: Path | None = None) -> str:
    env = dict(os.environ)
    if home is not None:
        env["CLOUDTUNE_HOME"] = str(home)
        env["CLOUDTUNE_DB"] = f"sqlite:///{home / 'cloudtune.db'}"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_preload_imports_the_results_pages_modules_once_in_the_background() -> None:
    code = (
        "import sys, threading\n"
        "from core import preload\n"
        "assert preload.wait(0) and not preload.started()  # nothing to wait for yet\n"
        "assert 'scipy.stats' not in sys.modules and 'altair' not in sys.modules\n"
        "preload.start(); preload.start()\n"
        "names = [t.name for t in threading.enumerate()]\n"
        "assert names.count('cloudtune-preload') <= 1, names\n"
        "assert preload.wait(300)\n"
        "print(sorted(m for m in preload.MODULES if m in sys.modules) == sorted(preload.MODULES),"
        " 'altair' in sys.modules)\n"
    )
    assert _python(code) == "True True"


def test_a_module_that_fails_to_import_does_not_stop_the_rest() -> None:
    code = (
        "import sys\n"
        "from core import preload\n"
        "preload.MODULES = ('core.no_such_module', 'scipy.special')\n"
        "preload.start(); assert preload.wait(300)\n"
        "print('scipy.special' in sys.modules)\n"
    )
    assert _python(code) == "True"


def test_the_app_starts_the_preload_after_the_first_page(tmp_path: Path) -> None:
    code = (
        "from streamlit.testing.v1 import AppTest\n"
        "from core import preload\n"
        "app = AppTest.from_file('app.py', default_timeout=120)\n"
        "assert not preload.started()\n"
        "app.run(); assert not app.exception\n"
        "print(preload.started(), preload.wait(300))\n"
    )
    assert _python(code, tmp_path) == "True True"


def test_the_preload_holds_while_a_page_runs() -> None:
    code = (
        "import sys, time\n"
        "from core import preload\n"
        "with preload.paused():\n"
        "    preload.start()\n"
        "    time.sleep(1.0)\n"
        "    held = not preload.wait(0) and 'altair' not in sys.modules\n"
        "time.sleep(preload.QUIET_S / 2)  # the page is still being drawn: no import yet\n"
        "quiet = 'altair' not in sys.modules\n"
        "assert preload.wait(300)\n"
        "print(held, quiet, 'scipy.stats' in sys.modules)\n"
    )
    assert _python(code) == "True True True"
