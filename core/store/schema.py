"""The result store's tables, schema version and migrations."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4

metadata = sa.MetaData()


def new_run_uid() -> str:
    """Return a new run identity: a UUID, unique across every store and data folder."""
    return str(uuid.uuid4())


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
    # added in schema version 4: the run's identity across stores; its local folder's name
    sa.Column("uid", sa.String(36), default=new_run_uid),
    sa.Index("ix_runs_uid", "uid", unique=True),
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


def _v3_to_v4(conn: Connection) -> None:
    """Version 4 gives every run an identity unique across stores (run ids restart in each).

    A run's local folder is named by it, so a second database under one data folder, or a
    database deleted and made again, never reloads another run's KerasTuner state. Existing
    runs get a new identity, so none of them adopts a folder named by a bare run id: such a
    folder may belong to a run of another database.
    """
    cols = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "uid" not in cols:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN uid VARCHAR(36)"))
    ids = conn.execute(sa.text("SELECT id FROM runs WHERE uid IS NULL")).scalars().all()
    for run_id in ids:
        conn.execute(
            sa.text("UPDATE runs SET uid = :u WHERE id = :id"), {"u": new_run_uid(), "id": run_id}
        )
    conn.execute(sa.text("CREATE UNIQUE INDEX IF NOT EXISTS ix_runs_uid ON runs (uid)"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
"""``MIGRATIONS[n]`` upgrades a database at version n to version n + 1."""
