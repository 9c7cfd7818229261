"""Faults a local run must survive: SIGKILLs at random moments, and databases sharing a folder."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psutil
import pytest

from core.backends.local.backend import Handle
from core.store import ACTIVE_STATUSES, Store
from tests.backends.test_local_backend import (
    assert_no_duplicates,
    ended,
    launch,
    log_tail,
    make_spec,
    wait_until,
)

SEED = 20261202
KILLS = 3


def _group(pgid: int) -> list[psutil.Process]:
    """The live processes of a run's process group (the worker, or a chief and its workers)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_then_resume_ends_with_every_trial(store: Store) -> None:
    """SIGKILL a random process of the run at seeded random moments, resume each time: the
    run ends with exactly max_trials completed trials, none lost and none twice."""
    rng = random.Random(SEED)
    max_trials = 4
    spec = make_spec(budget={"max_trials": max_trials, "epochs": 1, "parallel_trials": 1})
    backend, run_id = launch(store, spec)
    # each kill waits for a random number of completed trials (non-decreasing, so the run
    # moves on), then a random fraction of a second: in start-up, mid-trial, between trials.
    # It waits for at most max_trials - 2, so two trials are still to run and the kill lands
    # however fast a trial is (with the worker's faster start, a last-trial kill came too late)
    after = sorted(rng.randrange(max_trials - 1) for _ in range(KILLS))
    kills: list[tuple[int, str]] = []
    started = time.monotonic()
    for done_before in after:
        run = store.get_run(run_id)
        if run.status == "completed":
            break
        handle = Handle.parse(run.handle)
        assert handle is not None
        wait_until(
            backend,
            store,
            run_id,
            lambda n=done_before: store.count_trials(run_id).get("completed", 0) >= n,
        )
        time.sleep(rng.uniform(0.0, 1.0))
        victims = _group(handle.pgid)
        if not victims or store.get_run(run_id).status not in ACTIVE_STATUSES:
            continue
        victim = rng.choice(sorted(victims, key=lambda p: p.pid))
        os.kill(victim.pid, signal.SIGKILL)
        done = store.count_trials(run_id).get("completed", 0)
        kills.append((done, store.get_run(run_id).status))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and backend.poll(store.get_run(run_id)).status in (
            ACTIVE_STATUSES
        ):
            time.sleep(0.2)
        run = store.get_run(run_id)
        if run.status == "completed":  # killed as it finished: nothing left to resume
            break
        assert run.status == "failed", (run.status, log_tail(store, run_id))
        assert (run.status_detail or "").startswith("interrupted: resume with")
        backend.resume(run)
    wait_until(backend, store, run_id, ended(store, run_id), timeout=150)
    run = store.get_run(run_id)
    assert run.status == "completed", (run.error, log_tail(store, run_id))
    assert len(kills) >= 2, f"too few kills landed: {kills}"
    trials = store.list_trials(run_id)
    assert store.count_trials(run_id).get("completed", 0) == max_trials, [
        (t.trial_key, t.status) for t in trials
    ]
    assert len(trials) == max_trials  # an interrupted trial ran again under its own key
    assert_no_duplicates(store, run_id)
    assert all(t.duration_s and t.objective is not None for t in trials)
    print(f"kills (completed trials, status) {kills} in {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_a_second_database_in_the_same_data_folder_runs_its_own_trials(home: Path) -> None:
    """The campaign's case: run 1 of a second database must not reload run 1 of the first."""
    first = Store(f"sqlite:///{home / 'first.db'}")
    lr = [{"name": "learning_rate", "type": "choice", "values": [0.002, 0.003]}]
    backend, a = launch(first, make_spec(space=lr, budget={"max_trials": 2, "epochs": 1}))
    wait_until(backend, first, a, ended(first, a))
    assert first.get_run(a).status == "completed", log_tail(first, a)

    second = Store(f"sqlite:///{home / 'second.db'}")  # or the first, deleted and made again
    bs = [{"name": "batch_size", "type": "choice", "values": [16, 48]}]
    other, b = launch(second, make_spec(space=bs, budget={"max_trials": 2, "epochs": 1}))
    assert a == b == 1
    wait_until(other, second, b, ended(second, b))
    run = second.get_run(b)
    assert run.status == "completed", log_tail(second, b)
    trials = second.list_trials(b)
    assert len(trials) == 2 and {t.status for t in trials} == {"completed"}
    assert all(set(t.params) == {"batch_size"} for t in trials), [t.params for t in trials]
    assert all(t.duration_s and t.duration_s > 0 for t in trials)
    assert run.uid != first.get_run(a).uid
