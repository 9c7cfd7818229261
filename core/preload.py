"""Import, once per process and in the background, what the results pages need.

The Compare and Present pages need Altair, the statistics and SciPy: about 1.5 s of imports on
a 2-core machine, which their first visit in a fresh server paid (``bench/bench_pages.py``).
:func:`start` imports them on a daemon thread after the app's first page has run, while the
user reads it, a module at a time and only while no page is running (:func:`paused`), so the
next click does not share the interpreter with it for more than one module's import.
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

MAX_HOLD_S = 30.0
"""The longest the thread waits for pages to finish before importing its next module."""

_lock = threading.Lock()
_started = False
_done = threading.Event()
_idle = threading.Condition()
_running = 0


def start() -> None:
    """Start importing :data:`MODULES` on a daemon thread; a no-op after the first call."""
    global _started
    with _lock:
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
    global _running
    with _idle:
        _running += 1
    try:
        yield
    finally:
        with _idle:
            _running -= 1
            _idle.notify_all()


def _run() -> None:
    t0 = time.perf_counter()
    try:
        for name in MODULES:
            with _idle:
                _idle.wait_for(lambda: _running == 0, timeout=MAX_HOLD_S)
            try:
                importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - the page imports it again and says why
                log.warning("preloading %s failed: %s", name, err)
    finally:
        _done.set()
    log.info("preloaded %d modules in %.2f s", len(MODULES), time.perf_counter() - t0)
