"""The Store: studies, runs, trials, epochs and settings in one SQL database."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from core.backends.records import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    EpochRecord,
    RunStatus,
    TrialFields,
    TrialRecord,
    check_fields,
)
from core.errors import NotFound, StoreError
from core.paths import cloudtune_home
from core.store import csv_import, frames
from core.store.rows import (
    RUN_FIELDS,
    ImportReport,
    RunFields,
    RunRow,
    StudyRow,
    TrialRow,
    close_segment,
    from_columns,
    open_segment,
)
from core.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    epochs,
    meta_table,
    metadata,
    new_run_uid,
    runs,
    settings_table,
    studies,
    trials,
)
from core.store.writes import (
    clean,
    dumps,
    epoch_values,
    first_key,
    loads,
    trial_values,
    upsert_epoch,
    upsert_trial,
)

log = logging.getLogger(__name__)

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
        self._tx = threading.local()  # this thread's open transaction(), if any
        try:
            self.engine: Engine = self._make_engine(self.url)
            self._prepare()
        except (ValueError, sa.exc.ArgumentError) as err:  # bad URL
            raise StoreError(
                f"The database URL {redact_url(self.url)} is not valid ({err}); give a "
                "SQLAlchemy URL such as sqlite:///path/to/cloudtune.db."
            ) from err
        except SQLAlchemyError as err:
            raise StoreError(
                f"Cannot open the result store at {redact_url(self.url)}: "
                f"{err.__class__.__name__}: {str(err).splitlines()[0]}. Check CLOUDTUNE_DB "
                "(or --db) and that the database is reachable."
            ) from err

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
        """Run ``fn`` in one transaction, retrying on a locked SQLite file (inside
        :meth:`transaction`: in that transaction)."""
        conn = getattr(self._tx, "conn", None)
        if conn is not None:
            return fn(conn)
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
        ) from last

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Make every write of this thread inside the block one transaction: all or nothing.

        Reads inside the block do not see its writes until it ends; write through the
        yielded connection, or through the Store's write methods that do not read back
        (create_study, create_run with a spec, upsert_trial, write_trial).

        Raises:
            StoreError: the store stayed locked by another writer.
        """
        if getattr(self._tx, "conn", None) is not None:
            raise RuntimeError("Store.transaction() does not nest")
        try:
            with self.engine.begin() as conn:
                self._tx.conn = conn
                try:
                    yield conn
                finally:
                    self._tx.conn = None
        except OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err):
                raise
            raise StoreError(
                f"The result store stayed locked by another writer: {err}. Try again."
            ) from err

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- studies
    def create_study(self, spec: Any) -> int:
        """Store a study for ``spec`` (a StudySpec or its dict form); return its id."""
        data = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        return int(
            self._write(
                lambda c: first_key(
                    c.execute(
                        sa.insert(studies).values(
                            name=data.get("name", "study"),
                            spec_json=dumps(data),
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
        return StudyRow(row.id, row.name, loads(row.spec_json), row.created_at)

    def list_studies(self) -> list[StudyRow]:
        """Return every study, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(studies).order_by(studies.c.id.desc())).all()
        return [StudyRow(r.id, r.name, loads(r.spec_json), r.created_at) for r in rows]

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
            "settings_json": dumps(dict(settings or {})),
            "spec_json": dumps(spec_data),
            "status": "queued",
            "max_trials": max_trials or spec_data.get("budget", {}).get("max_trials"),
            "created_at": time.time(),
            "forecast_json": dumps(dict(forecast)) if forecast else None,
            "uid": new_run_uid(),
        }
        return int(self._write(lambda c: first_key(c.execute(sa.insert(runs).values(**values)))))

    @staticmethod
    def _run_row(r: Any) -> RunRow:
        return from_columns(
            RunRow,
            r,
            settings=loads(r.settings_json),
            spec=loads(r.spec_json),
            forecast=loads(r.forecast_json) if r.forecast_json else None,
            segments=tuple(
                (float(a), None if b is None else float(b))
                for a, b in (json.loads(r.segments_json) if r.segments_json else [])
            ),
            uid=r.uid or "",
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
            values["settings_json"] = dumps(values.pop("settings"))
        if "forecast" in values:
            values["forecast_json"] = dumps(values.pop("forecast"))
        if "status" in values and values["status"] not in RUN_STATUSES:
            raise ValueError(f"unknown run status {values['status']!r}")
        values = {k: clean(v) for k, v in values.items()}
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
            open_segment(segments, now)
        if status in ACTIVE_STATUSES:
            values["ended_at"] = None
        else:
            values["ended_at"] = now
            close_segment(segments, now)
        values["segments_json"] = json.dumps(segments)
        values = {k: clean(v) for k, v in values.items()}
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
        values = trial_values(fields)
        return int(self._write(lambda conn: upsert_trial(conn, run_id, str(trial_key), values)))

    def write_trial(self, run_id: int, record: TrialRecord) -> int:
        """Write one trial record and its epochs in one transaction; return the trial's id.

        Every field of the record is written (None clears a stored value), except a missing
        ``number``, which keeps the stored one. Epochs are upserted by number.
        """
        fields = record.fields()
        if fields.get("number") is None:
            fields.pop("number")
        values = trial_values(fields)
        rows = [epoch_values(e) for e in record.epochs]

        def _put(conn: Connection) -> int:
            trial_id = upsert_trial(conn, run_id, str(record.key), values)
            for row in rows:
                upsert_epoch(conn, trial_id, row)
            return trial_id

        return int(self._write(_put))

    @staticmethod
    def _trial_row(r: Any) -> TrialRow:
        return from_columns(TrialRow, r, params=loads(r.params_json), metrics=loads(r.metrics_json))

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
        row = epoch_values(record)
        self._write(lambda conn: upsert_epoch(conn, trial_id, row))

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
            {"epoch": r.epoch, "wall_s": r.wall_s, "at": r.at, **loads(r.metrics_json)}
            for r in rows
        ]

    # -- tables for pages, statistics and export (core.store.frames)
    def trials_frame(
        self, *, run_ids: Iterable[int] | None = None, study_id: int | None = None
    ) -> Any:
        """Return the tidy per-trial table (see :func:`core.store.frames.trials_frame`)."""
        return frames.trials_frame(self, run_ids=run_ids, study_id=study_id)

    def trials_stamp(self, run_ids: Iterable[int]) -> tuple[Any, ...]:
        """Return a cheap fingerprint of the runs' trials (:func:`core.store.frames.trials_stamp`)."""
        return frames.trials_stamp(self, run_ids)

    def epochs_frame(self, run_ids: Iterable[int]) -> Any:
        """Return every epoch of the given runs (:func:`core.store.frames.epochs_frame`)."""
        return frames.epochs_frame(self, run_ids)

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
                conn.execute(sa.insert(settings_table).values(key=key, value=dumps(value)))

        self._write(_put)

    def settings_with_prefix(self, prefix: str) -> dict[str, Any]:
        """Return every setting whose key starts with ``prefix`` (prefix removed)."""
        query = sa.select(settings_table).where(settings_table.c.key.startswith(prefix))
        with self.engine.connect() as conn:
            return {r.key[len(prefix) :]: json.loads(r.value) for r in conn.execute(query).all()}

    # -- import (core.store.csv_import)
    def import_trials_csv(self, run_id: int, path: str | Path) -> ImportReport:
        """Load trials exported elsewhere (a CSV) into a run (:mod:`core.store.csv_import`)."""
        return csv_import.import_trials_csv(self, run_id, path)
