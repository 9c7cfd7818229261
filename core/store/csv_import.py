"""Import of trials exported elsewhere, as CSV (a row per trial): read it all, then write once.

The whole file is read and checked before anything is written, and the study, the run and
every trial are then written in one transaction (:meth:`Store.transaction`), so a file that
cannot be imported, or a process killed half-way, leaves nothing behind: no queued run, no
half-written rows.

Example:
    >>> run_id, report = import_csv_as_run(store, "export.csv", backend="sagemaker")
    >>> report.summary()
    '3 rows, 3 trials'
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.backends.records import TRIAL_STATUSES
from core.errors import StoreError
from core.store.rows import ImportReport
from core.store.schema import runs, trials

if TYPE_CHECKING:
    from core.store.store import Store

log = logging.getLogger(__name__)

FIELD_LIMIT = csv.field_size_limit()
"""The longest field the csv module reads (131,072 characters: 128 KB)."""

_SHOWN_ERRORS = 3


@dataclass
class CsvTrials:
    """A CSV read and checked: each trial key's trial columns (from its last row).

    Rows become the store's trial columns directly (params and metrics as JSON, every number
    finite), not :class:`~core.backends.records.TrialRecord`: building that frozen record of
    17 fields cost more than the rest of a row's parsing.
    """

    trials: dict[str, dict[str, Any]]
    report: ImportReport


def read_trials_csv(path: str | Path) -> CsvTrials:
    """Read and check a CSV of trials (a row per trial) without writing anything.

    Recognised columns: trial (or trial_key / TrainingJobName / id / trial_id), status,
    objective (or FinalObjectiveValue / val_accuracy / value), duration_s (or
    TrainingElapsedTimeSeconds / duration), billable_s, cost_usd, started_at, ended_at, seed,
    instance_type; any other column becomes a parameter (``p_x`` becomes ``x``). Bad rows are
    reported by line number and good rows kept; a key on several rows keeps its last row.

    Raises:
        StoreError: the file is missing, a folder, not UTF-8 text, empty, has no rows or no
            trial id column, a field is over 128 KB, or no row can be imported.
    """
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    report = ImportReport()
    by_key: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    layout: _Layout | None = None
    row_number = 0
    try:
        for values in reader:
            if not "".join(values).strip():
                continue  # a blank line
            if layout is None:
                layout = _Layout.of(values, path)
                continue
            row_number += 1
            try:
                key, columns = layout.trial(values, reader.line_num)
            except ValueError as err:
                report.errors.append((reader.line_num, str(err)))
                continue
            if key in by_key:  # a repeated key: its last row counts, in its place
                del by_key[key]
            by_key[key] = columns
            counts[key] = counts.get(key, 0) + 1
    except csv.Error as err:
        raise StoreError(_csv_error(path, err, row_number + 1, reader.line_num)) from err
    if layout is None:
        raise StoreError(f"{path} is empty: it needs a header row and a row per trial.")
    if row_number == 0:
        raise StoreError(
            f"{path} has a header but no rows: add a row per trial below the header "
            f"({', '.join(layout.header[:6])})."
        )
    if not by_key:
        raise StoreError(_all_refused(path, report.errors))
    report.rows = sum(counts.values())
    report.added = len(by_key)
    report.repeated = {k: n for k, n in counts.items() if n > 1}
    return CsvTrials(by_key, report)


def import_trials_csv(store: Store, run_id: int, path: str | Path) -> ImportReport:
    """Load trials exported elsewhere (a CSV, a row per trial) into an existing run.

    Trials are upserted by key, so importing a file again updates them in place. Nothing is
    written unless the whole file can be read (:func:`read_trials_csv`); all rows are then
    written in one transaction.

    Raises:
        StoreError: see :func:`read_trials_csv`; or the store stayed locked.
    """
    store.get_run(run_id)
    read = read_trials_csv(path)
    with store.transaction() as conn:
        write_trials(conn, run_id, read.trials)
    return read.report


def import_csv_as_run(
    store: Store,
    path: str | Path,
    *,
    study_id: int | None = None,
    name: str | None = None,
    backend: str = "local",
) -> tuple[int, ImportReport]:
    """Import a CSV of trials as a new, completed run (of a new study unless ``study_id``).

    The study, the run and its trials are written in one transaction after the whole file
    was read: either all of them are stored, or none.

    Args:
        store: the result store.
        path: the CSV file.
        study_id: add the run to this study (default: a new study named ``name``).
        name: the new study's name (default: the file's name without its suffix).
        backend: the platform the trials ran on.

    Returns:
        The new run's id and what was read.

    Raises:
        StoreError: see :func:`read_trials_csv`; or the store stayed locked.
    """
    read = read_trials_csv(path)
    with store.transaction() as conn:
        if study_id is None:
            study_id = store.create_study(
                {
                    "name": name or Path(path).stem,
                    "space": [],
                    "strategy": "random",
                    "imported_from": str(path),
                }
            )
        run_id = store.create_run(study_id, backend, spec={"name": "imported"})
        write_trials(conn, run_id, read.trials)
        now = time.time()
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(status="completed", status_detail="imported", ended_at=now, segments_json="[]")
        )
    return run_id, read.report


def write_trials(conn: Connection, run_id: int, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """Upsert trials (trial key -> its columns, but number) in bulk: one INSERT and one UPDATE
    statement, each executed for many rows. New trials are numbered after the run's own."""
    existing = dict(
        conn.execute(
            sa.select(trials.c.trial_key, trials.c.id).where(trials.c.run_id == run_id)
        ).all()
    )
    number = len(existing)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, columns in rows.items():
        trial_id = existing.get(key)
        if trial_id is None:
            inserts.append({**columns, "run_id": run_id, "trial_key": key, "number": number})
            number += 1
        else:
            updates.append({**columns, "_id": trial_id})
    if inserts:
        _insert_many(conn, inserts)
    if updates:
        conn.execute(sa.update(trials).where(trials.c.id == sa.bindparam("_id")), updates)


def _insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """INSERT rows (each with the same columns, all plain values) as one executemany of the
    statement compiled once for the database: a third of the time SQLAlchemy takes to bind
    each row through its statement object."""
    compiled = sa.insert(trials).compile(dialect=conn.dialect, column_keys=list(rows[0]))
    params: list[Any] = rows
    if compiled.positional:
        order = compiled.positiontup or []
        params = [tuple(row[name] for name in order) for row in rows]
    conn.exec_driver_sql(compiled.string, params)


_JSON = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
"""Made once: json.dumps with options builds an encoder each call, which costs more than
encoding a row's few parameters."""


# ----------------------------------------------------------------------------- reading


def _read_text(path: str | Path) -> str:
    """Return the file's text, or raise a sentence naming the file and the fix."""
    file = Path(path)
    if file.is_dir():
        raise StoreError(f"{path} is a folder, not a CSV file: give the path of the CSV file.")
    try:
        data = file.read_bytes()
    except FileNotFoundError as err:
        raise StoreError(f"There is no file {path}: check the path and the name.") from err
    except OSError as err:
        raise StoreError(f"Cannot read {path}: {err.strerror}.") from err
    fix = "re-save it as CSV in UTF-8 (in Excel: Save As → CSV UTF-8) and import it again"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise StoreError(f"{path} is UTF-16 text, not UTF-8 text: {fix}.")
    if b"\x00" in data:
        raise StoreError(
            f"{path} is not UTF-8 text: it holds NUL bytes, as a binary file (a workbook, an "
            f"archive) does; {fix}."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise StoreError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}; Latin-1 "
            f"or Windows-1252 perhaps): {fix}."
        ) from err


def _csv_error(path: str | Path, err: csv.Error, row: int, line: int) -> str:
    if "field larger than field limit" in str(err):
        return (
            f"{path}, row {row} (line {line}): a field is longer than "
            f"{FIELD_LIMIT // 1024} KB, the most a CSV field may hold; a trial's values are "
            "short, so check that quotes are closed on that row and that the file is a CSV "
            "of trials."
        )
    return f"{path}, row {row} (line {line}) is not valid CSV: {err}."


def _all_refused(path: str | Path, errors: list[tuple[int, str]]) -> str:
    shown = "; ".join(message.rstrip(".") for _line, message in errors[:_SHOWN_ERRORS])
    more = len(errors) - _SHOWN_ERRORS
    return (
        f"No row of {path} could be imported ({len(errors)} row"
        f"{'' if len(errors) == 1 else 's'}, all refused): {shown}"
        f"{f'; and {more} more' if more > 0 else ''}. Fix them and import again."
    )


_KEY_COLS = ("trial_key", "trial", "TrainingJobName", "id", "trial_id")
_OBJ_COLS = ("objective", "FinalObjectiveValue", "val_accuracy", "value")
_DUR_COLS = ("duration_s", "TrainingElapsedTimeSeconds", "duration")
_STATUS_COLS = ("status", "TrainingJobStatus")
_NUMBER_COLS = ("billable_s", "cost_usd", "started_at", "ended_at", "seed")
_RESERVED = {
    *_KEY_COLS,
    *_OBJ_COLS,
    *_DUR_COLS,
    *_STATUS_COLS,
    *_NUMBER_COLS,
    "error",
    "backend",
    "run_id",
    "number",
    "instance_type",
}
_STATUS_NAMES = {"succeeded": "completed", "complete": "completed"}
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class _Layout:
    """Where a header puts each recognised column (its index) and which are parameters.

    A column named twice counts by its last occurrence, as a row read into a dict would.
    """

    header: list[str]
    keys: tuple[int, ...]
    objective: tuple[str, int] | None
    duration: tuple[str, int] | None
    status: tuple[int, ...]
    numbers: tuple[tuple[str, int], ...]
    instance_type: int | None
    params: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, values: list[str], path: str | Path) -> _Layout:
        header = [v.strip() for v in values]
        index = {h: i for i, h in enumerate(header) if h}
        keys = tuple(index[c] for c in _KEY_COLS if c in index)
        if not keys:
            raise StoreError(
                f"{path} has no trial id column: name one of its columns "
                f"{' or '.join(_KEY_COLS)} (its header is {', '.join(h for h in header[:8] if h)})."
            )
        obj = next(((c, index[c]) for c in _OBJ_COLS if c in index), None)
        dur = next(((c, index[c]) for c in _DUR_COLS if c in index), None)
        return cls(
            header=header,
            keys=keys,
            objective=obj,
            duration=dur,
            status=tuple(index[c] for c in _STATUS_COLS if c in index),
            numbers=tuple((c, index[c]) for c in _NUMBER_COLS if c in index),
            instance_type=index.get("instance_type"),
            params=tuple(
                (c[2:] if c.startswith("p_") else c, i)
                for c, i in index.items()
                if c not in _RESERVED
            ),
        )

    def trial(self, values: list[str], line: int) -> tuple[str, dict[str, Any]]:
        """Return the trial key on one row and its trial columns.

        Raises:
            ValueError: a sentence starting "line N:" naming the column and the fix.
        """
        if len(values) < len(self.header):
            values = values + [""] * (len(self.header) - len(values))
        key = next((values[i] for i in self.keys if values[i]), None)
        if not key:
            raise ValueError(f"line {line}: no trial id (a column named trial or trial_key).")
        objective = _num(values, self.objective, line)
        raw = next((values[i] for i in self.status if values[i]), "completed").lower()
        status = _STATUS_NAMES.get(raw, raw)
        if status not in TRIAL_STATUSES:
            raise ValueError(
                f"line {line}: status {status!r} is not one of {', '.join(TRIAL_STATUSES)}."
            )
        if status == "completed" and objective is None:
            raise ValueError(f"line {line}: a completed trial needs an objective value.")
        numbers = {column[0]: _num(values, column, line) for column in self.numbers}
        seed = numbers.pop("seed", None)
        if seed is not None and not (0 <= seed <= _MAX_SEED and seed.is_integer()):
            raise ValueError(f"line {line}: seed {seed:g} is not a whole number 0 to 2**63-1.")
        params = {name: _param(values[i]) for name, i in self.params if values[i] != ""}
        kind = values[self.instance_type] if self.instance_type is not None else ""
        return key, {
            "params_json": _JSON(params),
            "status": status,
            "objective": objective,
            "metrics_json": "{}" if objective is None else f'{{"objective": {objective!r}}}',
            "started_at": numbers.get("started_at"),
            "ended_at": numbers.get("ended_at"),
            "duration_s": _num(values, self.duration, line),
            "billable_s": numbers.get("billable_s"),
            "cost_usd": numbers.get("cost_usd"),
            "seed": None if seed is None else int(seed),
            "instance_type": kind or None,
            "error": None,
        }


def _num(values: list[str], column: tuple[str, int] | None, line: int) -> float | None:
    if column is None:
        return None
    name, i = column
    value = values[i]
    try:
        out = float(value)
    except ValueError as err:
        if not value.strip():
            return None
        raise ValueError(f"line {line}: {name} {value!r} is not a number.") from err
    if not math.isfinite(out):
        raise ValueError(f"line {line}: {name} is {value}, not a finite number.")
    return out


def _param(value: str) -> Any:
    """A parameter's value: an int when written without a point, else a float, else text."""
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in value else number
