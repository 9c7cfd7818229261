"""The result store: studies, runs, trials and epochs in SQL (SQLite by default, any SQLAlchemy URL).

The storage contract
--------------------
* **Who writes what.** The process that launched a run (CLI or app) writes the run row; the
  run's worker (a local worker process, or the poller of a cloud job) is the only writer of that
  run's trial and epoch rows and of its status while it runs. Readers (pages, the CLI) never
  write trial rows. Settings rows are written by the Settings page and the CLI.
* **What is durable when.** Every public write method is one short transaction, committed
  before it returns: a finished epoch or trial survives any crash that happens after the call.
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

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from core.backends.records import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    TRIAL_STATUSES,
    EpochRecord,
    RunStatus,
    TrialFields,
    TrialRecord,
    TrialStatus,
    check_fields,
)
from core.errors import NotFound, StoreError
from core.paths import cloudtune_home

SCHEMA_VERSION = 3
__all__ = [
    "ACTIVE_STATUSES",
    "RUN_STATUSES",
    "TRIAL_STATUSES",
    "EpochRecord",
    "RunStatus",
    "TrialRecord",
    "TrialStatus",
]

metadata = sa.MetaData()

meta_table = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.ForeignKey("studies.id", ondelete="CASCADE"), index=True),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("instance_type", sa.String(64)),
    sa.Column("settings_json", sa.Text, nullable=False, default="{}"),
    sa.Column("spec_json", sa.Text),
    sa.Column("status", sa.String(16), nullable=False, default="queued"),
    sa.Column("status_detail", sa.Text),
    sa.Column("handle", sa.Text),
    sa.Column("max_trials", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("cost_usd", sa.Float),
    # added in schema version 2
    sa.Column("forecast_json", sa.Text),
    sa.Column("heartbeat_at", sa.Float),
    # added in schema version 3: [[start, end or null], ...], the spans the run was running
    sa.Column("segments_json", sa.Text),
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("trial_key", sa.String(200), nullable=False),
    sa.Column("number", sa.Integer),
    sa.Column("params_json", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False, default="running"),
    sa.Column("objective", sa.Float),
    sa.Column("metrics_json", sa.Text, nullable=False, default="{}"),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("duration_s", sa.Float),
    sa.Column("billable_s", sa.Float),
    sa.Column("cost_usd", sa.Float),
    sa.Column("seed", sa.Integer),
    sa.Column("instance_type", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("run_id", "trial_key", name="uq_trial_key"),
)

epochs = sa.Table(
    "epochs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("metrics_json", sa.Text, nullable=False, default="{}"),
    sa.Column("wall_s", sa.Float),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("trial_id", "epoch", name="uq_epoch"),
)

settings_table = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def _v1_to_v2(conn: Connection) -> None:
    """Version 2 added the run's cost forecast and the worker's heartbeat."""
    cols = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "forecast_json" not in cols:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN forecast_json TEXT"))
    if "heartbeat_at" not in cols:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN heartbeat_at FLOAT"))


def _v2_to_v3(conn: Connection) -> None:
    """Version 3 records the spans a run was running (a cancelled-then-resumed run has two)."""
    cols = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "segments_json" not in cols:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN segments_json TEXT"))
    rows = conn.execute(sa.text("SELECT id, started_at, ended_at FROM runs")).all()
    for run_id, started, ended in rows:
        if started is not None:
            conn.execute(
                sa.text("UPDATE runs SET segments_json = :s WHERE id = :id"),
                {"s": json.dumps([[started, ended]]), "id": run_id},
            )


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
"""``MIGRATIONS[n]`` upgrades a database at version n to version n + 1."""


# ----------------------------------------------------------------------------- locations


def data_home() -> Path:
    """Return the data folder ($CLOUDTUNE_HOME, else the per-user data folder), created."""
    path = cloudtune_home()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_url() -> str:
    """Return the store's URL: $CLOUDTUNE_DB, else a SQLite file in the data folder."""
    return os.environ.get("CLOUDTUNE_DB") or f"sqlite:///{data_home() / 'cloudtune.db'}"


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced, for display and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(invalid database URL)"


# ----------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class StudyRow:
    """A study: its spec as stored."""

    id: int
    name: str
    spec: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class RunRow:
    """One study executed on one backend."""

    id: int
    study_id: int
    backend: str
    instance_type: str | None
    settings: dict[str, Any]
    spec: dict[str, Any]
    status: RunStatus
    status_detail: str | None
    handle: str | None
    max_trials: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None
    cost_usd: float | None
    forecast: dict[str, Any] | None
    heartbeat_at: float | None
    segments: tuple[tuple[float, float | None], ...] = ()
    """The spans the run was running, as (start, end); the last one is open while it runs."""

    @property
    def active(self) -> bool:
        """True while the run is queued or running."""
        return self.status in ACTIVE_STATUSES

    def active_s(self, until: float | None = None) -> float:
        """Return the seconds the run was running up to ``until`` (default: now).

        Time it sat cancelled, stopped or failed before a resume is not counted, so this is
        the run's wall time on every platform ("time to completion"), and
        ``active_s(trial.ended_at)`` places a trial on the run's time axis.
        """
        now = time.time()
        spans = self.segments
        if not spans and self.started_at is not None:
            spans = ((self.started_at, self.ended_at),)
        total = 0.0
        for start, end in spans:
            if end is None:  # still running: up to ``until``, or now
                stop = now if until is None else until
            else:
                stop = end if until is None else min(end, until)
            total += max(0.0, stop - start)
        return total

    def wall_s(self, now: float | None = None) -> float | None:
        """Return the run's wall time so far (None before it started): see :meth:`active_s`."""
        if self.started_at is None and not self.segments:
            return None
        return self.active_s(now)


@dataclass(frozen=True)
class TrialRow:
    """One trial of a run."""

    id: int
    run_id: int
    trial_key: str
    number: int | None
    params: dict[str, Any]
    status: TrialStatus
    objective: float | None
    metrics: dict[str, Any]
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    billable_s: float | None
    cost_usd: float | None
    seed: int | None
    instance_type: str | None
    error: str | None


class RunFields(TypedDict, total=False):
    """The columns of a run row ``Store.update_run`` may set."""

    instance_type: str | None
    settings: Mapping[str, Any]
    spec_json: str
    status: RunStatus
    status_detail: str | None
    handle: str | None
    max_trials: int | None
    started_at: float | None
    ended_at: float | None
    error: str | None
    cost_usd: float | None
    forecast: Mapping[str, Any] | None
    heartbeat_at: float | None


RUN_FIELDS: frozenset[str] = frozenset(RunFields.__annotations__)


def _open_segment(segments: list[list[float | None]], at: float) -> None:
    if not segments or segments[-1][1] is not None:
        segments.append([at, None])


def _close_segment(segments: list[list[float | None]], at: float) -> None:
    if segments and segments[-1][1] is None:
        start = segments[-1][0]
        segments[-1][1] = max(at, start if start is not None else at)


@dataclass
class ImportReport:
    """What an import kept and what it refused (by line number)."""

    added: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _clean(value: Any) -> Any:
    """Turn NaN and infinities into None so JSON and SQL stay valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def _first_key(result: Any) -> int:
    """Return the primary key an INSERT produced."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _dumps(value: Any) -> str:
    return json.dumps(_clean(value), sort_keys=True)


def _trial_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Turn trial fields into column values (mappings as JSON, NaN as NULL)."""
    values = dict(fields)
    if "params" in values:
        values["params_json"] = _dumps(dict(values.pop("params") or {}))
    if "metrics" in values:
        values["metrics_json"] = _dumps(dict(values.pop("metrics") or {}))
    return {k: _clean(v) for k, v in values.items()}


def _upsert_trial(conn: Connection, run_id: int, key: str, values: dict[str, Any]) -> int:
    existing = conn.execute(
        sa.select(trials.c.id).where(trials.c.run_id == run_id, trials.c.trial_key == key)
    ).scalar()
    if existing is not None:
        if values:
            conn.execute(sa.update(trials).where(trials.c.id == existing).values(**values))
        return int(existing)
    values = dict(values)
    if values.get("number") is None:
        count = conn.execute(sa.select(sa.func.count()).where(trials.c.run_id == run_id)).scalar()
        values["number"] = int(count or 0)
    result = conn.execute(sa.insert(trials).values(run_id=run_id, trial_key=key, **values))
    return int(_first_key(result))


def _epoch_values(record: EpochRecord) -> dict[str, Any]:
    return {
        "epoch": int(record.epoch),
        "metrics_json": _dumps(dict(record.metrics)),
        "wall_s": _clean(record.wall_s),
    }


def _upsert_epoch(conn: Connection, trial_id: int, row: Mapping[str, Any]) -> None:
    conn.execute(
        sa.delete(epochs).where(epochs.c.trial_id == trial_id, epochs.c.epoch == row["epoch"])
    )
    conn.execute(sa.insert(epochs).values(trial_id=trial_id, at=time.time(), **row))


# ----------------------------------------------------------------------------- the store


class Store:
    """SQL storage of studies, runs, trials and epochs; see the module docstring's contract.

    Args:
        url: a SQLAlchemy URL; default :func:`default_url`.

    Raises:
        StoreError: the database cannot be opened or upgraded.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            self.engine: Engine = self._make_engine(self.url)
            self._prepare()
        except (ValueError, sa.exc.ArgumentError) as err:  # bad URL
            raise StoreError(
                f"The database URL {redact_url(self.url)} is not valid ({err}); give a "
                "SQLAlchemy URL such as sqlite:///path/to/cloudtune.db."
            ) from None
        except SQLAlchemyError as err:
            raise StoreError(
                f"Cannot open the result store at {redact_url(self.url)}: "
                f"{err.__class__.__name__}: {str(err).splitlines()[0]}. Check CLOUDTUNE_DB "
                "(or --db) and that the database is reachable."
            ) from None

    @staticmethod
    def _make_engine(url: str) -> Engine:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if not db or db == ":memory:":
            engine = sa.create_engine(
                url, connect_args={"check_same_thread": False}, poolclass=sa.pool.StaticPool
            )
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine

    def _prepare(self) -> None:
        with self.engine.begin() as conn:
            existing = set(sa.inspect(conn).get_table_names())
            if "runs" in existing:
                self._upgrade(conn)
            metadata.create_all(conn)
            self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))

    def _upgrade(self, conn: Connection) -> None:
        row = None
        if sa.inspect(conn).has_table("meta"):
            row = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).scalar()
        version = int(row) if row else 1
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The database at {redact_url(self.url)} was written by a newer CloudTune "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade CloudTune."
            )
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1

    @staticmethod
    def _set_meta(conn: Connection, key: str, value: str) -> None:
        conn.execute(sa.delete(meta_table).where(meta_table.c.key == key))
        conn.execute(sa.insert(meta_table).values(key=key, value=value))

    def schema_version(self) -> int:
        """Return the database's schema version."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).scalar()
        return int(value or 0)

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn`` in one transaction, retrying on a locked SQLite file."""
        last: OperationalError | None = None
        for attempt in range(8):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                last = err
                time.sleep(0.05 * (attempt + 1))
        raise StoreError(
            f"The result store stayed locked by another writer: {last}. Try again."
        ) from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- studies
    def create_study(self, spec: Any) -> int:
        """Store a study for ``spec`` (a StudySpec or its dict form); return its id."""
        data = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        return int(
            self._write(
                lambda c: _first_key(
                    c.execute(
                        sa.insert(studies).values(
                            name=data.get("name", "study"),
                            spec_json=_dumps(data),
                            created_at=time.time(),
                        )
                    )
                )
            )
        )

    def get_study(self, key: int | str) -> StudyRow:
        """Return a study by id, or the newest study with that name.

        Raises:
            NotFound: no such study.
        """
        query = sa.select(studies)
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            query = query.where(studies.c.id == int(key))
        else:
            query = query.where(studies.c.name == key).order_by(studies.c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"No study {key!r} in the store; `python -m core studies` lists them.")
        return StudyRow(row.id, row.name, _loads(row.spec_json), row.created_at)

    def list_studies(self) -> list[StudyRow]:
        """Return every study, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(studies).order_by(studies.c.id.desc())).all()
        return [StudyRow(r.id, r.name, _loads(r.spec_json), r.created_at) for r in rows]

    # -- runs
    def create_run(
        self,
        study_id: int,
        backend: str,
        *,
        instance_type: str | None = None,
        settings: Mapping[str, Any] | None = None,
        spec: Any = None,
        max_trials: int | None = None,
        forecast: Mapping[str, Any] | None = None,
    ) -> int:
        """Create a queued run of a study on a backend; return its id.

        Args:
            study_id: the study.
            backend: "local", "sagemaker", "vertex" or "azure".
            instance_type: the machine type the trials run on.
            settings: the backend's non-secret settings for this run.
            spec: the spec this run executes (defaults to the study's).
            max_trials: the run's trial budget.
            forecast: the cost and time forecast made before launch.
        """
        if spec is None:
            spec_data = self.get_study(study_id).spec
        else:
            spec_data = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        values = {
            "study_id": study_id,
            "backend": backend,
            "instance_type": instance_type,
            "settings_json": _dumps(dict(settings or {})),
            "spec_json": _dumps(spec_data),
            "status": "queued",
            "max_trials": max_trials or spec_data.get("budget", {}).get("max_trials"),
            "created_at": time.time(),
            "forecast_json": _dumps(dict(forecast)) if forecast else None,
        }
        return int(self._write(lambda c: _first_key(c.execute(sa.insert(runs).values(**values)))))

    @staticmethod
    def _run_row(r: Any) -> RunRow:
        return RunRow(
            id=r.id,
            study_id=r.study_id,
            backend=r.backend,
            instance_type=r.instance_type,
            settings=_loads(r.settings_json),
            spec=_loads(r.spec_json),
            status=r.status,
            status_detail=r.status_detail,
            handle=r.handle,
            max_trials=r.max_trials,
            created_at=r.created_at,
            started_at=r.started_at,
            ended_at=r.ended_at,
            error=r.error,
            cost_usd=r.cost_usd,
            forecast=_loads(r.forecast_json) if r.forecast_json else None,
            heartbeat_at=r.heartbeat_at,
            segments=tuple(
                (float(a), None if b is None else float(b))
                for a, b in (json.loads(r.segments_json) if r.segments_json else [])
            ),
        )

    def get_run(self, run_id: int) -> RunRow:
        """Return a run.

        Raises:
            NotFound: no such run.
        """
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == int(run_id))).first()
        if row is None:
            raise NotFound(f"No run {run_id} in the store; `python -m core runs` lists them.")
        return self._run_row(row)

    def list_runs(
        self, study_id: int | None = None, *, statuses: Iterable[str] | None = None
    ) -> list[RunRow]:
        """Return runs, newest first, optionally of one study or with given statuses."""
        query = sa.select(runs).order_by(runs.c.id.desc())
        if study_id is not None:
            query = query.where(runs.c.study_id == study_id)
        if statuses is not None:
            query = query.where(runs.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return [self._run_row(r) for r in conn.execute(query).all()]

    def update_run(self, run_id: int, **fields: Unpack[RunFields]) -> None:
        """Set columns of a run (status, handle, started_at, ended_at, error, cost_usd, ...).

        ``settings`` and ``forecast`` are accepted as mappings and stored as JSON. Status
        changes go through :meth:`set_run_status`, which also keeps the run's running spans.

        Raises:
            TypeError: a name is not a column a run may set.
        """
        unknown = sorted(set(fields) - RUN_FIELDS)
        if unknown:
            raise TypeError(f"a run has no field {', '.join(unknown)}")
        values: dict[str, Any] = dict(fields)
        if "started_at" in values or "ended_at" in values:
            values["segments_json"] = json.dumps(self._moved_span(run_id, values))
        if "settings" in values:
            values["settings_json"] = _dumps(values.pop("settings"))
        if "forecast" in values:
            values["forecast_json"] = _dumps(values.pop("forecast"))
        if "status" in values and values["status"] not in RUN_STATUSES:
            raise ValueError(f"unknown run status {values['status']!r}")
        values = {k: _clean(v) for k, v in values.items()}
        self._write(
            lambda c: c.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        )

    def _moved_span(self, run_id: int, values: Mapping[str, Any]) -> list[list[float | None]]:
        """The run's spans after setting its start or end time directly (an import, a
        platform's own times): the first span starts at started_at, the last ends at ended_at."""
        run = self.get_run(run_id)
        spans: list[list[float | None]] = [[a, b] for a, b in run.segments]
        start = values.get("started_at", run.started_at)
        end = values.get("ended_at", run.ended_at)
        if start is None:
            return spans
        if not spans:
            return [[float(start), None if end is None else max(float(end), float(start))]]
        if "started_at" in values:
            spans[0][0] = float(start)
        if "ended_at" in values and end is not None:
            spans[-1][1] = max(float(end), spans[-1][0] or float(end))
        return spans

    def set_run_status(
        self,
        run_id: int,
        status: RunStatus,
        *,
        error: str | None = None,
        detail: str | None = None,
        at: float | None = None,
    ) -> None:
        """Move a run to ``status``, stamping started_at / ended_at and its running spans.

        A span opens when the run starts running and closes when it ends (completed, failed,
        cancelled, stopped); a resumed run opens a new one, so its wall time leaves out the
        time it sat stopped (:meth:`RunRow.active_s`).

        Args:
            run_id: the run.
            status: the new status.
            error: the run's error sentence (kept when None).
            detail: the status detail (cleared when None).
            at: when it happened (default now), e.g. a cloud job's own end time.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        now = time.time() if at is None else float(at)
        values: dict[str, Any] = {"status": status, "status_detail": detail}
        if error is not None:
            values["error"] = error
        run = self.get_run(run_id)
        segments: list[list[float | None]] = [[a, b] for a, b in run.segments]
        if status == "running" and run.started_at is None:
            values["started_at"] = now
        if status == "running":
            _open_segment(segments, now)
        if status in ACTIVE_STATUSES:
            values["ended_at"] = None
        else:
            values["ended_at"] = now
            _close_segment(segments, now)
        values["segments_json"] = json.dumps(segments)
        values = {k: _clean(v) for k, v in values.items()}
        self._write(
            lambda c: c.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        )

    def set_run_span(self, run_id: int, started_at: float | None, ended_at: float | None) -> None:
        """Set a run's one running span from its platform's own times (a cloud job's start
        and end), replacing the times seen when polling."""
        if started_at is None:
            return
        end = None if ended_at is None else max(float(ended_at), float(started_at))
        values: dict[str, Any] = {
            "started_at": float(started_at),
            "segments_json": json.dumps([[float(started_at), end]]),
        }
        if end is not None:
            values["ended_at"] = end
        self._write(
            lambda c: c.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        )

    def heartbeat(self, run_id: int) -> None:
        """Record that the run's worker is alive now."""
        self.update_run(run_id, heartbeat_at=time.time())

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its trials and epochs."""

        def _delete(conn: Connection) -> None:
            ids = sa.select(trials.c.id).where(trials.c.run_id == run_id)
            conn.execute(sa.delete(epochs).where(epochs.c.trial_id.in_(ids)))
            conn.execute(sa.delete(trials).where(trials.c.run_id == run_id))
            conn.execute(sa.delete(runs).where(runs.c.id == run_id))

        self._write(_delete)

    # -- trials
    def upsert_trial(self, run_id: int, trial_key: str, **fields: Unpack[TrialFields]) -> int:
        """Insert or update the trial ``trial_key`` of a run; return its id.

        Fields are those of :class:`~core.backends.records.TrialFields`; omitted fields keep
        their stored value. A new trial without a number gets the next one.

        Raises:
            TypeError: a name is not a trial field.
        """
        check_fields(fields)
        values = _trial_values(fields)
        return int(self._write(lambda conn: _upsert_trial(conn, run_id, str(trial_key), values)))

    def write_trial(self, run_id: int, record: TrialRecord) -> int:
        """Write one trial record and its epochs in one transaction; return the trial's id.

        Every field of the record is written (None clears a stored value), except a missing
        ``number``, which keeps the stored one. Epochs are upserted by number.
        """
        fields = record.fields()
        if fields.get("number") is None:
            fields.pop("number")
        values = _trial_values(fields)
        rows = [_epoch_values(e) for e in record.epochs]

        def _put(conn: Connection) -> int:
            trial_id = _upsert_trial(conn, run_id, str(record.key), values)
            for row in rows:
                _upsert_epoch(conn, trial_id, row)
            return trial_id

        return int(self._write(_put))

    @staticmethod
    def _trial_row(r: Any) -> TrialRow:
        return TrialRow(
            id=r.id,
            run_id=r.run_id,
            trial_key=r.trial_key,
            number=r.number,
            params=_loads(r.params_json),
            status=r.status,
            objective=r.objective,
            metrics=_loads(r.metrics_json),
            started_at=r.started_at,
            ended_at=r.ended_at,
            duration_s=r.duration_s,
            billable_s=r.billable_s,
            cost_usd=r.cost_usd,
            seed=r.seed,
            instance_type=r.instance_type,
            error=r.error,
        )

    def list_trials(self, run_id: int, *, status: str | None = None) -> list[TrialRow]:
        """Return the trials of a run in order of their number."""
        query = sa.select(trials).where(trials.c.run_id == run_id)
        if status is not None:
            query = query.where(trials.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(trials.c.number, trials.c.id)).all()
        return [self._trial_row(r) for r in rows]

    def count_trials(self, run_id: int) -> dict[str, int]:
        """Return the number of trials of a run per status."""
        query = (
            sa.select(trials.c.status, sa.func.count())
            .where(trials.c.run_id == run_id)
            .group_by(trials.c.status)
        )
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(query).all()}

    # -- epochs
    def add_epoch(self, trial_id: int, record: EpochRecord) -> None:
        """Record (or replace) one finished epoch of a trial."""
        row = _epoch_values(record)
        self._write(lambda conn: _upsert_epoch(conn, trial_id, row))

    def epoch_counts(self, run_id: int) -> dict[int, int]:
        """Return how many epochs each trial of a run has stored, by trial id."""
        query = (
            sa.select(epochs.c.trial_id, sa.func.count())
            .join(trials, epochs.c.trial_id == trials.c.id)
            .where(trials.c.run_id == run_id)
            .group_by(epochs.c.trial_id)
        )
        with self.engine.connect() as conn:
            return {int(t): int(n) for t, n in conn.execute(query).all()}

    def list_epochs(self, trial_id: int) -> list[dict[str, Any]]:
        """Return a trial's epochs as dicts: epoch, wall_s, at and each metric."""
        query = sa.select(epochs).where(epochs.c.trial_id == trial_id).order_by(epochs.c.epoch)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {"epoch": r.epoch, "wall_s": r.wall_s, "at": r.at, **_loads(r.metrics_json)}
            for r in rows
        ]

    # -- tables for pages, statistics and export
    def trials_frame(
        self, *, run_ids: Iterable[int] | None = None, study_id: int | None = None
    ) -> Any:
        """Return the tidy per-trial table (a pandas DataFrame, a row per trial).

        Columns: study_id, study, run_id, backend, instance_type, strategy, trial, trial_key,
        status, objective, duration_s, billable_s, cost_usd, started_at, ended_at, seed, error,
        the final metrics (one column each) and the parameters (one column each, prefixed
        ``p_``). Built column-wise, so 100,000 trials read in about a second.
        """
        import pandas as pd

        run_query = sa.select(
            runs.c.id,
            runs.c.study_id,
            runs.c.backend,
            runs.c.instance_type,
            runs.c.spec_json,
            studies.c.name,
        ).join(studies, runs.c.study_id == studies.c.id)
        if run_ids is not None:
            run_query = run_query.where(runs.c.id.in_([int(r) for r in run_ids]))
        if study_id is not None:
            run_query = run_query.where(runs.c.study_id == study_id)
        with self.engine.connect() as conn:
            run_rows = {r.id: r for r in conn.execute(run_query).all()}
            rows = (
                conn.execute(
                    sa.select(
                        trials.c.run_id,
                        trials.c.number,
                        trials.c.trial_key,
                        trials.c.status,
                        trials.c.objective,
                        trials.c.duration_s,
                        trials.c.billable_s,
                        trials.c.cost_usd,
                        trials.c.started_at,
                        trials.c.ended_at,
                        trials.c.seed,
                        trials.c.error,
                        trials.c.instance_type,
                        trials.c.metrics_json,
                        trials.c.params_json,
                    )
                    .where(trials.c.run_id.in_(list(run_rows)))
                    .order_by(trials.c.run_id, trials.c.number, trials.c.id)
                ).all()
                if run_rows
                else []
            )
        columns = [
            "study_id",
            "study",
            "run_id",
            "backend",
            "instance_type",
            "strategy",
            "trial",
            "trial_key",
            "status",
            "objective",
            "duration_s",
            "billable_s",
            "cost_usd",
            "started_at",
            "ended_at",
            "seed",
            "error",
        ]
        if not rows:
            return pd.DataFrame(columns=columns)
        cols = list(zip(*rows, strict=True))
        run_col = pd.Series(cols[0], dtype="int64")
        per_run = pd.DataFrame(
            {
                "study_id": {k: r.study_id for k, r in run_rows.items()},
                "study": {k: r.name for k, r in run_rows.items()},
                "backend": {k: r.backend for k, r in run_rows.items()},
                "run_instance": {k: r.instance_type for k, r in run_rows.items()},
                "strategy": {
                    k: str(_loads(r.spec_json).get("strategy", "")) for k, r in run_rows.items()
                },
            }
        )
        frame = pd.DataFrame(
            {
                "study_id": run_col.map(per_run["study_id"]),
                "study": run_col.map(per_run["study"]),
                "run_id": run_col,
                "backend": run_col.map(per_run["backend"]),
                "instance_type": pd.Series(cols[12], dtype=object).fillna(
                    run_col.map(per_run["run_instance"])
                ),
                "strategy": run_col.map(per_run["strategy"]),
                "trial": cols[1],
                "trial_key": cols[2],
                "status": cols[3],
                "objective": pd.Series(cols[4], dtype="float64"),
                "duration_s": pd.Series(cols[5], dtype="float64"),
                "billable_s": pd.Series(cols[6], dtype="float64"),
                "cost_usd": pd.Series(cols[7], dtype="float64"),
                "started_at": pd.Series(cols[8], dtype="float64"),
                "ended_at": pd.Series(cols[9], dtype="float64"),
                "seed": cols[10],
                "error": cols[11],
            }
        )
        extra: dict[str, Any] = {}
        if any(m not in (None, "", "{}") for m in cols[13]):
            metrics = pd.DataFrame.from_records([_loads(m) for m in cols[13]])
            for name in metrics.columns:
                if name not in frame.columns:
                    extra[str(name)] = metrics[name].to_numpy()
        params = pd.DataFrame.from_records([_loads(p) for p in cols[14]])
        for name in params.columns:
            extra[f"p_{name}"] = params[name].to_numpy()
        if extra:
            frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
        return frame

    def trials_stamp(self, run_ids: Iterable[int]) -> tuple[Any, ...]:
        """Return a cheap fingerprint of the runs' trials that changes whenever one is written.

        Pages key their caches on it: an unchanged stamp means the per-trial table is the same.
        """
        query = sa.select(
            sa.func.count(),
            sa.func.max(trials.c.id),
            sa.func.max(trials.c.ended_at),
            sa.func.total(trials.c.objective),
            sa.func.total(trials.c.cost_usd),
            sa.func.sum(sa.case((trials.c.status == "completed", 1), else_=0)),
        ).where(trials.c.run_id.in_([int(r) for r in run_ids]))
        with self.engine.connect() as conn:
            return tuple(conn.execute(query).one())

    def epochs_frame(self, run_ids: Iterable[int]) -> Any:
        """Return every epoch of the given runs: run_id, trial, trial_id, epoch, wall_s, metrics."""
        import pandas as pd

        query = (
            sa.select(epochs, trials.c.run_id, trials.c.number)
            .join(trials, epochs.c.trial_id == trials.c.id)
            .where(trials.c.run_id.in_([int(r) for r in run_ids]))
            .order_by(trials.c.run_id, trials.c.number, epochs.c.epoch)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        records = [
            {
                "run_id": r.run_id,
                "trial": r.number,
                "trial_id": r.trial_id,
                "epoch": r.epoch,
                "wall_s": r.wall_s,
                "at": r.at,
                **_loads(r.metrics_json),
            }
            for r in rows
        ]
        if not records:
            return pd.DataFrame(columns=["run_id", "trial", "trial_id", "epoch", "wall_s", "at"])
        return pd.DataFrame.from_records(records)

    # -- settings (never secrets)
    def get_setting(self, key: str, default: Any = None) -> Any:
        """Return a stored setting (JSON value) or ``default``."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(settings_table.c.value).where(settings_table.c.key == key)
            ).scalar()
        return default if value is None else json.loads(value)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a setting (any JSON value; None deletes it). Never pass a secret here."""

        def _put(conn: Connection) -> None:
            conn.execute(sa.delete(settings_table).where(settings_table.c.key == key))
            if value is not None:
                conn.execute(sa.insert(settings_table).values(key=key, value=_dumps(value)))

        self._write(_put)

    def settings_with_prefix(self, prefix: str) -> dict[str, Any]:
        """Return every setting whose key starts with ``prefix`` (prefix removed)."""
        query = sa.select(settings_table).where(settings_table.c.key.startswith(prefix))
        with self.engine.connect() as conn:
            return {r.key[len(prefix) :]: json.loads(r.value) for r in conn.execute(query).all()}

    # -- import
    def import_trials_csv(self, run_id: int, path: str | Path) -> ImportReport:
        """Load trials exported elsewhere (a CSV, a row per trial) into a run.

        Recognised columns: trial (or trial_key / TrainingJobName / id), status, objective
        (or FinalObjectiveValue / val_accuracy), duration_s (or TrainingElapsedTimeSeconds),
        billable_s, cost_usd, started_at, ended_at; any other numeric column becomes a
        parameter. Bad rows are reported by line number and good rows kept.

        Raises:
            StoreError: the file cannot be read as CSV.
        """
        report = ImportReport()
        try:
            handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
        except OSError as err:
            raise StoreError(f"Cannot read {path}: {err.strerror}.") from None
        with handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise StoreError(f"{path} is empty: it needs a header row and a row per trial.")
            for line, row in enumerate(reader, start=2):
                try:
                    record = _parse_import_row(row, line)
                except ValueError as err:
                    report.errors.append((line, str(err)))
                    continue
                self.write_trial(run_id, record)
                report.added += 1
        return report


_KEY_COLS = ("trial_key", "trial", "TrainingJobName", "id", "trial_id")
_OBJ_COLS = ("objective", "FinalObjectiveValue", "val_accuracy", "value")
_DUR_COLS = ("duration_s", "TrainingElapsedTimeSeconds", "duration")
_RESERVED = {
    *_KEY_COLS,
    *_OBJ_COLS,
    *_DUR_COLS,
    "status",
    "TrainingJobStatus",
    "billable_s",
    "cost_usd",
    "started_at",
    "ended_at",
    "error",
    "backend",
    "run_id",
    "number",
    "seed",
    "instance_type",
}


def _num(value: str | None, column: str, line: int) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"line {line}: {column} {value!r} is not a number.") from None
    if not math.isfinite(out):
        raise ValueError(f"line {line}: {column} is {value}, not a finite number.")
    return out


def _parse_import_row(row: Mapping[str, str | None], line: int) -> TrialRecord:
    key = next((row[c] for c in _KEY_COLS if row.get(c)), None)
    if not key:
        raise ValueError(f"line {line}: no trial id (a column named trial or trial_key).")
    obj_col = next((c for c in _OBJ_COLS if c in row), None)
    dur_col = next((c for c in _DUR_COLS if c in row), None)
    objective = _num(row.get(obj_col) if obj_col else None, obj_col or "objective", line)
    status = (row.get("status") or row.get("TrainingJobStatus") or "completed").lower()
    status = {"succeeded": "completed", "complete": "completed", "stopped": "stopped"}.get(
        status, status
    )
    if status not in TRIAL_STATUSES:
        raise ValueError(
            f"line {line}: status {status!r} is not one of {', '.join(TRIAL_STATUSES)}."
        )
    if status == "completed" and objective is None:
        raise ValueError(f"line {line}: a completed trial needs an objective value.")
    params: dict[str, Any] = {}
    for col, value in row.items():
        if col is None or col in _RESERVED or value is None or value == "":
            continue
        name = col[2:] if col.startswith("p_") else col
        try:
            number = float(value)
            params[name] = int(number) if number.is_integer() and "." not in value else number
        except ValueError:
            params[name] = value
    seed = _num(row.get("seed"), "seed", line)
    return TrialRecord(
        key=str(key),
        params=params,
        status=next(s for s in TRIAL_STATUSES if s == status),
        objective=objective,
        metrics={"objective": objective} if objective is not None else {},
        started_at=_num(row.get("started_at"), "started_at", line),
        ended_at=_num(row.get("ended_at"), "ended_at", line),
        duration_s=_num(row.get(dur_col) if dur_col else None, dur_col or "duration_s", line),
        billable_s=_num(row.get("billable_s"), "billable_s", line),
        cost_usd=_num(row.get("cost_usd"), "cost_usd", line),
        seed=None if seed is None else int(seed),
        instance_type=row.get("instance_type") or None,
    )
