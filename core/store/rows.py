"""The rows the store returns (studies, runs, trials) and the run fields it sets."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

from core.backends.records import (
    ACTIVE_STATUSES,
    RunStatus,
    TrialStatus,
)

log = logging.getLogger(__name__)

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
    uid: str = ""
    """The run's identity, unique across stores (run ids restart in every database); its
    local folder is named by it."""

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


def open_segment(segments: list[list[float | None]], at: float) -> None:
    if not segments or segments[-1][1] is not None:
        segments.append([at, None])


def close_segment(segments: list[list[float | None]], at: float) -> None:
    if segments and segments[-1][1] is None:
        start = segments[-1][0]
        segments[-1][1] = max(at, start if start is not None else at)


@dataclass
class ImportReport:
    """What an import kept and what it refused (by line number).

    Attributes:
        added: the trials written (one per distinct trial key).
        rows: the good rows read (more than ``added`` when keys repeat: the last row wins).
        repeated: each trial key found on more than one good row, with its row count.
        errors: (line, sentence) for every row refused.
    """

    added: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    repeated: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """Return what was read, e.g. "3 rows, 1 trial: keys repeated (a 3 times)..."."""
        rows = f"{self.rows} row{'' if self.rows == 1 else 's'}"
        trials = f"{self.added} trial{'' if self.added == 1 else 's'}"
        text = f"{rows}, {trials}"
        if self.repeated:
            shown = ", ".join(f"{k} {n} times" for k, n in list(self.repeated.items())[:3])
            more = len(self.repeated) - 3
            text += (
                f": keys repeated ({shown}{f' and {more} more' if more > 0 else ''}); "
                "the last row of each key was kept"
            )
        if self.errors:
            text += f"; {len(self.errors)} row{'' if len(self.errors) == 1 else 's'} skipped"
        return text


Row = TypeVar("Row")


def from_columns(row_type: type[Row], result: Any, **decoded: Any) -> Row:
    """Build a row record from a result row: each field from the column of its name, except
    the fields ``decoded`` gives (JSON columns and other columns that need decoding).

    Args:
        row_type: the frozen dataclass (RunRow, TrialRow...).
        result: a SQLAlchemy result row.
        **decoded: the values of the fields that are not a column as stored.
    """
    names = _field_names(row_type)  # type: ignore[arg-type]  # a class is hashable
    values = {name: getattr(result, name) for name in names if name not in decoded}
    return row_type(**values, **decoded)


@functools.cache
def _field_names(row_type: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(row_type))
