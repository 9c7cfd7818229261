"""The local backend's harness for the backend conformance suite: backend, settings, finish."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.backends.base import Backend
from core.store import ACTIVE_STATUSES, RunRow, Store

FINISH_TIMEOUT_S = 120.0


@dataclass
class Harness:
    """What the conformance suite needs to drive one backend.

    Attributes:
        backend: the backend under test.
        settings: settings that make ``backend.check`` return [].
        finish: ``finish(handle, n)`` waits until the run with that handle completed n trials.
    """

    backend: Backend
    settings: dict[str, Any] = field(default_factory=dict)
    finish: Callable[[str, int], None] = lambda handle, n: None


def _run_with_handle(store: Store, handle: str) -> RunRow:
    for run in store.list_runs():
        if run.handle == handle:
            return run
    raise AssertionError(f"no run in the store has the handle {handle!r}")


def _log_tail(handle: str, lines: int = 30) -> str:
    from core.backends.local import Handle

    parsed = Handle.parse(handle)
    if parsed is None or not parsed.log or not Path(parsed.log).exists():
        return "(no log)"
    return "\n".join(Path(parsed.log).read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def harness(store: Store, tmp_path: Path) -> Iterator[Harness]:
    """Yield a Harness for the local backend; stop any run still active on the way out.

    Args:
        store: a store on a file (the worker process opens it by URL).
        tmp_path: a scratch folder (unused: runs live under CLOUDTUNE_HOME).
    """
    from core.backends.local import LocalBackend

    backend = LocalBackend(store)

    def finish(handle: str, n: int) -> None:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        run = _run_with_handle(store, handle)
        while time.monotonic() < deadline:
            status = backend.poll(run).status
            done = store.count_trials(run.id).get("completed", 0)
            if status not in ACTIVE_STATUSES:
                if status == "completed" and done >= n:
                    return
                run = store.get_run(run.id)
                raise AssertionError(
                    f"run {run.id} ended {status} with {done} of {n} trials completed: "
                    f"{run.error}\n{_log_tail(handle)}"
                )
            time.sleep(0.5)
        raise AssertionError(
            f"run {run.id} did not complete {n} trials in {FINISH_TIMEOUT_S:.0f} s\n"
            f"{_log_tail(handle)}"
        )

    try:
        yield Harness(backend=backend, settings={}, finish=finish)
    finally:
        for run in store.list_runs(statuses=ACTIVE_STATUSES):
            if run.backend == "local" and run.handle:
                backend.cancel(run)
