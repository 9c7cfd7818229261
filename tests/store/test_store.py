"""The result store: round trips, upserts, concurrency, schema upgrades, CSV import."""

from __future__ import annotations

import math
import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.backends.records import EpochRecord
from core.errors import NotFound, StoreError
from core.store import SCHEMA_VERSION, Store, redact_url


def test_round_trip_of_study_run_trials_and_epochs(store: Store, published_spec) -> None:
    sid = store.create_study(published_spec)
    assert store.get_study(sid).spec == published_spec.to_dict()
    assert store.get_study("published-study").id == sid
    rid = store.create_run(sid, "local", instance_type="this-machine", settings={"workers": 1})
    run = store.get_run(rid)
    assert (run.status, run.max_trials, run.settings) == ("queued", 20, {"workers": 1})
    store.set_run_status(rid, "running")
    tid = store.upsert_trial(
        rid,
        "t0",
        params={"learning_rate": 0.01, "batch_size": 64},
        status="running",
        started_at=1.0,
    )
    for epoch in range(2):
        store.add_epoch(
            tid, EpochRecord(epoch, {"val_accuracy": 0.5 + epoch / 10, "loss": 1.0}, 0.3)
        )
    store.upsert_trial(
        rid,
        "t0",
        status="completed",
        objective=0.6,
        metrics={"val_accuracy": 0.6},
        ended_at=3.5,
        duration_s=2.5,
    )
    store.set_run_status(rid, "completed")
    run = store.get_run(rid)
    assert run.status == "completed" and run.started_at and run.ended_at
    [trial] = store.list_trials(rid)
    assert trial.params == {"learning_rate": 0.01, "batch_size": 64}
    assert (trial.status, trial.objective, trial.duration_s, trial.number) == (
        "completed",
        0.6,
        2.5,
        0,
    )
    assert [e["val_accuracy"] for e in store.list_epochs(tid)] == [0.5, 0.6]
    frame = store.trials_frame(study_id=sid)
    assert list(frame["p_learning_rate"]) == [0.01]
    assert frame.loc[0, "backend"] == "local" and frame.loc[0, "strategy"] == "bayesian"
    epochs = store.epochs_frame([rid])
    assert list(epochs["epoch"]) == [0, 1]


def test_upserts_never_duplicate_and_nan_becomes_null(store: Store, published_spec) -> None:
    rid = store.create_run(store.create_study(published_spec), "local")
    a = store.upsert_trial(rid, "x", status="running")
    b = store.upsert_trial(rid, "x", status="failed", objective=math.nan, error="NaN loss")
    store.add_epoch(a, EpochRecord(0, {"loss": math.inf}))
    store.add_epoch(a, EpochRecord(0, {"loss": 2.0}))
    assert a == b
    [trial] = store.list_trials(rid)
    assert trial.objective is None and trial.status == "failed"
    assert store.list_epochs(a)[0]["loss"] == 2.0
    assert store.count_trials(rid) == {"failed": 1}


def test_missing_rows_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="python -m core runs"):
        store.get_run(99)
    with pytest.raises(NotFound, match="No study 'nope'"):
        store.get_study("nope")


def test_bad_urls_give_sentences(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not valid"):
        Store("not a url")
    assert redact_url("postgresql://bob:secret@db/x") == "postgresql://bob:***@db/x"


def test_settings_round_trip(store: Store) -> None:
    store.set_setting("sagemaker.region", "eu-west-1")
    store.set_setting("sagemaker.bucket", "b")
    assert store.get_setting("sagemaker.region") == "eu-west-1"
    assert store.settings_with_prefix("sagemaker.") == {"region": "eu-west-1", "bucket": "b"}
    store.set_setting("sagemaker.bucket", None)
    assert store.get_setting("sagemaker.bucket", "none") == "none"


def _writer(url: str, run_id: int, worker: int, n: int) -> None:
    s = Store(url)
    for i in range(n):
        tid = s.upsert_trial(run_id, f"w{worker}-{i}", status="running", params={"i": i})
        s.add_epoch(tid, EpochRecord(0, {"loss": 1.0}))
        s.upsert_trial(run_id, f"w{worker}-{i}", status="completed", objective=i / n)
    s.dispose()


def test_two_processes_write_one_sqlite_file_at_once(home: Path, published_spec) -> None:
    url = f"sqlite:///{home / 'shared.db'}"
    store = Store(url)
    rid = store.create_run(store.create_study(published_spec), "local")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, rid, w, 60)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.count_trials(rid) == {"completed": 120}
    assert len(store.epochs_frame([rid])) == 120


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path, published_spec) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE studies (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL,
            spec_json TEXT NOT NULL, created_at FLOAT NOT NULL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY, study_id INTEGER, backend VARCHAR(32) NOT NULL,
            instance_type VARCHAR(64), settings_json TEXT NOT NULL, spec_json TEXT,
            status VARCHAR(16) NOT NULL, status_detail TEXT, handle TEXT, max_trials INTEGER,
            created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, error TEXT, cost_usd FLOAT);
        INSERT INTO studies VALUES (1, 'old', '{"name": "old"}', 0);
        INSERT INTO runs (id, study_id, backend, settings_json, status, created_at)
            VALUES (1, 1, 'local', '{}', 'completed', 0);
        """
    )
    con.commit()
    con.close()
    store = Store(f"sqlite:///{path}")
    assert store.schema_version() == SCHEMA_VERSION
    run = store.get_run(1)
    assert run.status == "completed" and run.forecast is None and run.heartbeat_at is None
    store.heartbeat(1)
    assert store.get_run(1).heartbeat_at is not None
    cols = {c["name"] for c in sa.inspect(store.engine).get_columns("runs")}
    assert {"forecast_json", "heartbeat_at", "uid"} <= cols
    assert len(run.uid) == 36


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    store.dispose()
    with pytest.raises(StoreError, match="newer CloudTune"):
        Store(url)


def test_csv_import_keeps_good_rows_and_reports_bad_lines(
    store: Store, published_spec, tmp_path: Path
) -> None:
    rid = store.create_run(store.create_study(published_spec), "sagemaker")
    path = tmp_path / "export.csv"
    path.write_text(
        "TrainingJobName,TrainingJobStatus,FinalObjectiveValue,TrainingElapsedTimeSeconds,learning_rate,batch_size\n"
        "job-1,Completed,0.91,120,0.01,64\n"
        "job-2,Completed,oops,130,0.02,32\n"
        ",Completed,0.5,10,0.1,32\n"
        "job-4,Failed,,50,0.09,128\n"
        "job-5,Completed,,50,0.09,128\n"
    )
    report = store.import_trials_csv(rid, path)
    assert report.added == 2
    assert [line for line, _ in report.errors] == [3, 4, 6]
    assert "FinalObjectiveValue 'oops' is not a number" in report.errors[0][1]
    trials = {t.trial_key: t for t in store.list_trials(rid)}
    assert trials["job-1"].params == {"learning_rate": 0.01, "batch_size": 64}
    assert trials["job-1"].duration_s == 120 and trials["job-4"].status == "failed"
    # importing again updates in place: no duplicates
    store.import_trials_csv(rid, path)
    assert len(store.list_trials(rid)) == 2


def test_every_run_has_an_identity_unique_across_stores(home: Path, published_spec) -> None:
    import uuid

    one, two = Store(f"sqlite:///{home / 'one.db'}"), Store(f"sqlite:///{home / 'two.db'}")
    a = one.get_run(one.create_run(one.create_study(published_spec), "local"))
    b = two.get_run(two.create_run(two.create_study(published_spec), "local"))
    c = one.get_run(one.create_run(a.study_id, "local"))
    assert a.id == b.id == 1  # ids restart in every database...
    assert len({a.uid, b.uid, c.uid}) == 3  # ...identities do not
    assert all(str(uuid.UUID(r.uid)) == r.uid for r in (a, b, c))
    with pytest.raises(sa.exc.IntegrityError), one.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET uid = :u WHERE id = :id"), {"u": a.uid, "id": c.id})


def test_a_version_3_database_gives_its_runs_identities(tmp_path: Path, published_spec) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    store = Store(url)
    sid = store.create_study(published_spec)
    ids = [store.create_run(sid, "local") for _ in range(3)]
    with store.engine.begin() as conn:  # back to version 3: no uid column, no index
        conn.execute(sa.text("DROP INDEX ix_runs_uid"))
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN uid"))
        conn.execute(sa.text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))
    store.dispose()
    upgraded = Store(url)
    assert upgraded.schema_version() == SCHEMA_VERSION == 4
    uids = [upgraded.get_run(i).uid for i in ids]
    assert all(len(u) == 36 for u in uids) and len(set(uids)) == 3
    indexes = {i["name"]: i for i in sa.inspect(upgraded.engine).get_indexes("runs")}
    assert indexes["ix_runs_uid"]["unique"]
    new = upgraded.get_run(upgraded.create_run(sid, "local"))
    assert new.uid not in uids
