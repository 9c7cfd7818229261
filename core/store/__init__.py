"""The result store: studies, runs, trials and epochs in SQL (SQLite by default, any SQLAlchemy URL).

The storage contract
--------------------
* **Who writes what.** The process that launched a run (CLI or app) writes the run row; the
  run's worker (a local worker process, or the poller of a cloud job) is the only writer of that
  run's trial and epoch rows and of its status while it runs. Readers (pages, the CLI) never
  write trial rows. Settings rows are written by the Settings page and the CLI.
* **What is durable when.** Every public write method is one short transaction, committed
  before it returns: a finished epoch or trial survives any crash that happens after the call.
  Inside ``with store.transaction():`` a thread's writes commit together or not at all (CSV
  import writes its study, run and trials so; other writers wait for it, as for any writer).
  Trials are keyed by ``(run_id, trial_key)`` and epochs by ``(trial_id, epoch)``, and both are
  written as upserts, so a resumed or re-polled run never holds duplicate rows.
* **Concurrency.** A Store may be shared by threads (SQLAlchemy's pool hands each thread its own
  connection). Several processes may write one SQLite file at once: the file runs in WAL mode
  with a busy timeout, so writers queue instead of failing with 'database is locked'; a write
  that still finds the file locked is retried a few times. On a server database (PostgreSQL)
  the usual row locking applies.
* **Secrets** are never written: settings hold names (region, bucket, role ARN, workspace),
  never keys or tokens.
* **Schema versions.** ``meta.schema_version`` records the version; :data:`MIGRATIONS` upgrade
  older databases in place when a Store opens them.

Example:
    >>> store = Store("sqlite://")            # in memory
    >>> sid = store.create_study(spec)
    >>> rid = store.create_run(sid, backend="local", max_trials=5)
"""

from core.backends.records import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    TRIAL_STATUSES,
    EpochRecord,
    RunStatus,
    TrialFields,
    TrialRecord,
    TrialStatus,
)
from core.store.rows import RUN_FIELDS, ImportReport, RunFields, RunRow, StudyRow, TrialRow
from core.store.schema import MIGRATIONS, SCHEMA_VERSION, metadata
from core.store.store import Store, data_home, default_url, redact_url

__all__ = [
    "ACTIVE_STATUSES",
    "MIGRATIONS",
    "RUN_FIELDS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "TRIAL_STATUSES",
    "EpochRecord",
    "ImportReport",
    "RunFields",
    "RunRow",
    "RunStatus",
    "Store",
    "StudyRow",
    "TrialFields",
    "TrialRecord",
    "TrialRow",
    "TrialStatus",
    "data_home",
    "default_url",
    "metadata",
    "redact_url",
]
