"""Import, once per process and in the background, what the results pages need.

The Compare and Present pages need Altair, the statistics and SciPy: about 1.5 s of imports on
a 2-core machine, which their first visit in a fresh server paid (``bench/bench_pages.py``).
:func:`start` imports them on a daemon thread after the app's first page has run, while the
user reads it: a module at a time, only while no page runs (:func:`paused`) and
:data:`QUIET_S` after the last one, so it does not compete with a page being run for more than
one module's import.
:func:`wait` is called before a page that needs them, so that page and the thread never import
the same modules at once (Python's per-module import locks make two threads importing one
module wait for each other, and a concurrent circular import can fail with a deadlock error).
A page that comes before the thread has started imports them itself, as before.

Example:
    >>> from core import preload
    >>> preload.start()
    >>> preload.wait(timeout=120)
    True
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

MODULES: tuple[str, ...] = (
    "altair",
    "core.analysis.comparison",
    "core.analysis.report",
    "scipy.sparse",
    "scipy.linalg",
    "scipy.special",
    "scipy.optimize",
    "scipy.interpolate",
    "scipy.stats",
)
"""What the results pages import, in dependency order, in steps of 0.01-0.6 s (scipy.stats,
whose package imports all of it, is the largest): the app's heaviest first-use cost."""

QUIET_S = 0.2
"""How long after the last page run the thread waits before its next module. The browser is
still drawing that page, and on two cores an import slows the drawing; but a user who clicks
from page to page leaves no quiet second, so with 1 s Compare's first visit paid all the
imports itself (bench_pages clicking at once, side by side: 2.76 s with 1 s, 1.61-1.74 s with
0.2 s, 1.67 s with 0, while Search space's rose from 0.60 s to 0.85 s and 1.07 s)."""
MAX_HOLD_S = 30.0
"""The longest the thread waits for a quiet moment before importing its next module."""

_idle = threading.Condition()
"""Guards the state below; notified when a page run ends."""
_started = False
_done = threading.Event()
_running = 0
_last_end = 0.0


def start() -> None:
    """Start importing :data:`MODULES` on a daemon thread; a no-op after the first call."""
    global _started
    with _idle:
        if _started:
            return
        _started = True
    threading.Thread(target=_run, name="cloudtune-preload", daemon=True).start()


def started() -> bool:
    """Whether :func:`start` has been called in this process."""
    return _started


def wait(timeout: float | None = None) -> bool:
    """Block until the preload has finished (at once when it never started).

    Returns:
        False only when ``timeout`` passed first.
    """
    if not _started:
        return True
    return _done.wait(timeout)


@contextmanager
def paused() -> Iterator[None]:
    """Hold the preload between two of its modules while the enclosed page runs."""
    global _running, _last_end
    with _idle:
        _running += 1
    try:
        yield
    finally:
        with _idle:
            _running -= 1
            _last_end = time.monotonic()
            _idle.notify_all()


def _wait_quiet() -> None:
    """Wait until no page runs and none has for :data:`QUIET_S` (at most :data:`MAX_HOLD_S`)."""
    deadline = time.monotonic() + MAX_HOLD_S
    with _idle:
        while (now := time.monotonic()) < deadline:
            if _running == 0 and now - _last_end >= QUIET_S:
                return
            wait = QUIET_S - (now - _last_end) if _running == 0 else deadline - now
            _idle.wait(min(max(wait, 0.01), deadline - now))


def _run() -> None:
    t0 = time.perf_counter()
    try:
        for name in MODULES:
            _wait_quiet()
            try:
                importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - the page imports it again and says why
                log.warning("preloading %s failed: %s", name, err)
    finally:
        _done.set()
    log.info("preloaded %d modules in %.2f s", len(MODULES), time.perf_counter() - t0)
