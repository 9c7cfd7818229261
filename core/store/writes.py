"""Column values, JSON and the upserts the store's typed writers share."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.backends.records import (
    EpochRecord,
)
from core.store.schema import epochs, trials

log = logging.getLogger(__name__)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def clean(value: Any) -> Any:
    """Turn NaN and infinities into None so JSON and SQL stay valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def first_key(result: Any) -> int:
    """Return the primary key an INSERT produced."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def dumps(value: Any) -> str:
    return json.dumps(clean(value), sort_keys=True)


def trial_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Turn trial fields into column values (mappings as JSON, NaN as NULL)."""
    values = dict(fields)
    if "params" in values:
        values["params_json"] = dumps(dict(values.pop("params") or {}))
    if "metrics" in values:
        values["metrics_json"] = dumps(dict(values.pop("metrics") or {}))
    return {k: clean(v) for k, v in values.items()}


def upsert_trial(conn: Connection, run_id: int, key: str, values: dict[str, Any]) -> int:
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
    return int(first_key(result))


def epoch_values(record: EpochRecord) -> dict[str, Any]:
    return {
        "epoch": int(record.epoch),
        "metrics_json": dumps(dict(record.metrics)),
        "wall_s": clean(record.wall_s),
    }


def upsert_epoch(conn: Connection, trial_id: int, row: Mapping[str, Any]) -> None:
    conn.execute(
        sa.delete(epochs).where(epochs.c.trial_id == trial_id, epochs.c.epoch == row["epoch"])
    )
    conn.execute(sa.insert(epochs).values(trial_id=trial_id, at=time.time(), **row))
