"""Price catalog, time and cost forecasts, budget checks and live cost.

Prices come from ``assets/pricing.json`` (each with its source and as-of date) and can be
overridden in the store's settings (``price.<backend>.<region>.<instance>[.<accelerator>]``);
the local machine costs the ``local.rate_per_hour`` setting (default 0). A forecast says, in
plain sentences, where each of its numbers comes from: the caps (worst case), earlier trials in
the store (history), a short local calibration, or the documented relative-speed table.

Example:
    >>> hourly_price("vertex", "n1-standard-8", accelerator_type="NVIDIA_TESLA_V100",
    ...              accelerator_count=2)
    6.141
    >>> fc = forecast("sagemaker", spec, {"instance_type": "ml.g4dn.xlarge"}, store)
    >>> fc.expected_cost_usd, fc.basis[0]
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends.base import Forecast
from core.errors import CloudTuneError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

    from core.spec import Budget, StudySpec
    from core.store import RunRow, Store, TrialRow

CATALOG_PATH = Path(__file__).resolve().parent.parent / "assets" / "pricing.json"
STALE_AFTER_DAYS = 183
"""A price older than this (about 6 months) is shown with a warning."""
ANY_INSTANCE = "*"
"""instance_type of an accelerator add-on price: it applies to any machine it attaches to."""
LOCAL_RATE_KEY = "local.rate_per_hour"
LOCAL_RATE_AS_OF_KEY = "local.rate_as_of"
OVERRIDE_PREFIX = "price."
CALIBRATION_PREFIX = "calibration."
BUDGET_STOP_DETAIL = "stopped: budget reached"
NO_HISTORY_SPREAD = 0.5
"""Without history the range is the expected value plus or minus this fraction."""
HISTORY_RUNS = 50
"""How many of the newest runs are searched for history."""
LOCAL_CORES_PER_TRIAL = 1.5
"""Cores one local trial keeps busy (compute threads plus Python and tracing), assumed."""
MIN_ERRORS_TO_WIDEN = 3
"""Earlier forecast errors needed before they widen a forecast's range."""

DATASET_FACTS: dict[str, dict[str, Any]] = {
    "digits": {"shape": (8, 8, 1), "classes": 10, "examples": 1797},
    "mnist": {"shape": (28, 28, 1), "classes": 10, "examples": 60000},
    "fashion_mnist": {"shape": (28, 28, 1), "classes": 10, "examples": 60000},
    "cifar10": {"shape": (32, 32, 3), "classes": 10, "examples": 50000},
}
"""Image shape, classes and size of the training split of each built-in dataset."""

_SETTING_ALIASES = {
    "instance_type": ("instance_type", "machine_type", "vm_size", "instance"),
    "region": ("region", "location"),
    "accelerator_type": ("accelerator_type", "accelerator"),
    "accelerator_count": ("accelerator_count", "accelerators"),
}


# ----------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Price:
    """One on-demand price per hour.

    Attributes:
        backend: "local", "sagemaker", "vertex" or "azure".
        instance_type: the machine type; ``"*"`` for an accelerator add-on.
        region: the cloud region the price is for.
        usd_per_hour: dollars per machine (or per accelerator) hour.
        source: where the figure comes from.
        as_of: when the figure was valid.
        accelerator: the accelerator this add-on price is for (None for a machine).
        overridden: True when set in Settings rather than taken from the catalog.
        url: the vendor's pricing page to check the figure against.
    """

    backend: str
    instance_type: str
    region: str
    usd_per_hour: float
    source: str
    as_of: date
    accelerator: str | None = None
    overridden: bool = False
    url: str = ""

    def age_days(self, today: date | None = None) -> int:
        """Return how many days old the price is (0 when dated in the future)."""
        return max(0, ((today or date.today()) - self.as_of).days)

    def stale(self, today: date | None = None) -> bool:
        """Return True when the price is older than about 6 months."""
        return self.age_days(today) > STALE_AFTER_DAYS

    def describe(self) -> str:
        """Return a short sentence: what, where, how much, from where, as of when."""
        what = self.accelerator if self.accelerator else self.instance_type
        return (
            f"{what} in {self.region} at ${self.usd_per_hour:g}/h, {self.source} "
            f"as of {self.as_of.isoformat()}"
        )


@lru_cache(maxsize=8)
def _read_catalog(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def catalog_data(path: str | None = None) -> dict[str, Any]:
    """Return the raw catalog (backends, prices, relative_speed) as parsed JSON.

    Raises:
        CloudTuneError: the file is missing or is not valid JSON.
    """
    file = Path(path) if path else CATALOG_PATH
    try:
        return _read_catalog(str(file), file.stat().st_mtime)
    except OSError as err:
        raise CloudTuneError(
            f"Cannot read the price catalog {file}: {err.strerror}; reinstall CloudTune or "
            "point to a valid pricing.json."
        ) from None
    except ValueError as err:
        raise CloudTuneError(
            f"The price catalog {file} is not valid JSON ({err}); fix or restore it."
        ) from None


def load_catalog(path: str | None = None) -> list[Price]:
    """Load the catalog's prices (not the overrides).

    Args:
        path: a pricing.json; default ``assets/pricing.json``.

    Returns:
        One Price per entry, in file order.
    """
    out = []
    for entry in catalog_data(path)["prices"]:
        out.append(
            Price(
                backend=entry["backend"],
                instance_type=entry["instance_type"],
                region=entry["region"],
                usd_per_hour=float(entry["usd_per_hour"]),
                source=entry["source"],
                as_of=date.fromisoformat(entry["as_of"]),
                accelerator=entry.get("accelerator"),
                url=entry.get("url", ""),
            )
        )
    return out


def backend_facts(backend: str, path: str | None = None) -> dict[str, Any]:
    """Return the catalog's facts for one backend (default region and instance, overheads).

    Raises:
        CloudTuneError: the backend is unknown.
    """
    backends = catalog_data(path)["backends"]
    if backend not in backends:
        raise CloudTuneError(f"Unknown platform {backend!r}; use one of {', '.join(backends)}.")
    facts: dict[str, Any] = backends[backend]
    return facts


def _override_key(backend: str, region: str, instance_type: str, accelerator: str | None) -> str:
    key = f"{OVERRIDE_PREFIX}{backend}.{region}.{instance_type}"
    return f"{key}.{accelerator}" if accelerator else key


def set_price_override(
    store: Store,
    backend: str,
    instance_type: str,
    usd_per_hour: float | None,
    *,
    region: str | None = None,
    accelerator: str | None = None,
    as_of: date | None = None,
) -> None:
    """Keep a price set in Settings in the store (None removes the override).

    The key is ``price.<backend>.<region>.<instance>[.<accelerator>]``; for an accelerator
    add-on pass ``instance_type="*"`` (or "") and ``accelerator``. The local machine's rate is
    the ``local.rate_per_hour`` setting (use :func:`set_local_rate`).

    Args:
        store: the result store.
        backend: the platform.
        instance_type: the machine type (may be one the catalog lacks).
        usd_per_hour: dollars per hour, 0 or more; None deletes the override.
        region: default: the backend's default region.
        accelerator: the accelerator the price is for.
        as_of: the date the price was checked (default today).

    Raises:
        CloudTuneError: the price is negative or not a number, or the backend is unknown.
    """
    if backend == "local":
        if usd_per_hour is None:
            store.set_setting(LOCAL_RATE_KEY, None)
            store.set_setting(LOCAL_RATE_AS_OF_KEY, None)
        else:
            set_local_rate(store, usd_per_hour, as_of=as_of)
        return
    region = region or backend_facts(backend)["default_region"]
    if accelerator and instance_type in ("", None):
        instance_type = ANY_INSTANCE
    if not instance_type:
        raise CloudTuneError("Name the machine type the price is for, e.g. ml.m5.xlarge.")
    key = _override_key(backend, region, instance_type, accelerator)
    if usd_per_hour is None:
        store.set_setting(key, None)
        return
    value = _checked_rate(usd_per_hour, f"The price of {accelerator or instance_type}")
    store.set_setting(
        key,
        {
            "backend": backend,
            "region": region,
            "instance_type": instance_type,
            "accelerator": accelerator,
            "usd_per_hour": value,
            "as_of": (as_of or date.today()).isoformat(),
        },
    )


def _checked_rate(value: Any, what: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if not math.isfinite(rate) or rate < 0:
        raise CloudTuneError(f"{what} must be a number of dollars per hour, 0 or more.")
    return rate


def set_local_rate(store: Store, usd_per_hour: float, *, as_of: date | None = None) -> None:
    """Set what an hour of this machine costs (electricity, amortisation); default 0.

    Raises:
        CloudTuneError: the rate is negative or not a number.
    """
    rate = _checked_rate(usd_per_hour, "The local machine's rate")
    store.set_setting(LOCAL_RATE_KEY, rate)
    store.set_setting(LOCAL_RATE_AS_OF_KEY, (as_of or date.today()).isoformat())


def _local_price(
    store: Store | None, settings: Mapping[str, Any] | None = None, today: date | None = None
) -> Price:
    rate, as_of, source = 0.0, today or date.today(), "default: your own machine costs nothing"
    stored = store.get_setting(LOCAL_RATE_KEY) if store is not None else None
    given = (settings or {}).get("rate_per_hour", stored)
    if given is not None:
        rate = _checked_rate(given, "The local machine's rate")
        source = "the local rate set in Settings"
        stamp = store.get_setting(LOCAL_RATE_AS_OF_KEY) if store is not None else None
        if stamp:
            as_of = date.fromisoformat(str(stamp))
    return Price("local", "local", "local", rate, source, as_of, overridden=given is not None)


def _overrides(store: Store | None) -> list[Price]:
    if store is None:
        return []
    out = []
    for value in store.settings_with_prefix(OVERRIDE_PREFIX).values():
        if not isinstance(value, Mapping) or "usd_per_hour" not in value:
            continue
        out.append(
            Price(
                backend=str(value["backend"]),
                instance_type=str(value["instance_type"]),
                region=str(value["region"]),
                usd_per_hour=float(value["usd_per_hour"]),
                source="set in Settings",
                as_of=date.fromisoformat(str(value["as_of"])),
                accelerator=value.get("accelerator"),
                overridden=True,
            )
        )
    return out


def effective_prices(store: Store | None = None, path: str | None = None) -> list[Price]:
    """Return the catalog with the store's overrides applied, plus the local machine."""
    merged: dict[tuple[str, str, str, str | None], Price] = {}
    for p in [*load_catalog(path), *_overrides(store)]:
        merged[(p.backend, p.region, p.instance_type, p.accelerator)] = p
    return [_local_price(store), *merged.values()]


def catalog_frame(store: Store | None = None, today: date | None = None) -> pd.DataFrame:
    """Return the prices for the Settings page, overrides applied.

    Columns: backend, instance_type, accelerator, region, usd_per_hour, source, as_of,
    age_days, stale, overridden, url.
    """
    import pandas as pd

    rows = [
        {
            "backend": p.backend,
            "instance_type": p.instance_type,
            "accelerator": p.accelerator,
            "region": p.region,
            "usd_per_hour": p.usd_per_hour,
            "source": p.source,
            "as_of": p.as_of.isoformat(),
            "age_days": p.age_days(today),
            "stale": p.stale(today),
            "overridden": p.overridden,
            "url": p.url,
        }
        for p in effective_prices(store)
    ]
    return pd.DataFrame.from_records(rows)


def stale_warning(store: Store | None = None, today: date | None = None) -> str | None:
    """Return a sentence naming the prices older than 6 months, or None when all are recent."""
    old = [p for p in effective_prices(store) if p.stale(today)]
    if not old:
        return None
    oldest = max(p.age_days(today) for p in old)
    return (
        f"{len(old)} price{'s are' if len(old) != 1 else ' is'} older than 6 months "
        f"(the oldest {oldest} days): check them against the vendor's pricing page and "
        "update them in Settings."
    )


# ----------------------------------------------------------------------------- price look-up


@dataclass(frozen=True)
class Quote:
    """The hourly price of one machine with its accelerators, and how it was found.

    Attributes:
        usd_per_hour: the total per machine hour, or None when a part has no price.
        parts: the prices added up (machine first, then accelerator add-ons).
        region: the region asked for.
        notes: sentences about fallbacks and missing prices.
        accelerator_count: how many of the accelerator (the second part) are attached.
    """

    usd_per_hour: float | None
    parts: tuple[Price, ...]
    region: str
    notes: tuple[str, ...] = ()
    accelerator_count: int = 0

    def sentence(self, today: date | None = None) -> str:
        """Return the 'Price: ...' basis sentence, with a warning when a part is stale."""
        if self.usd_per_hour is None or not self.parts:
            return "Price: unknown. " + " ".join(self.notes)
        machine, *addons = self.parts
        if machine.backend == "local":
            return f"Price: this machine at ${machine.usd_per_hour:g}/h ({machine.source})."
        text = f"Price: {machine.instance_type} in {machine.region} at ${machine.usd_per_hour:g}/h"
        for acc in addons:
            text += f" + {self.accelerator_count} x {acc.accelerator} at ${acc.usd_per_hour:g}/h"
        if addons:
            text += f" = ${self.usd_per_hour:.4g}/h"
        sources = dict.fromkeys(f"{p.source}, as of {p.as_of.isoformat()}" for p in self.parts)
        text += f" ({'; '.join(sources)})."
        old = [p for p in self.parts if p.stale(today)]
        if old:
            days = max(p.age_days(today) for p in old)
            text += (
                f" This price is {days} days old (over 6 months): check it against the "
                "vendor's page and update it in Settings."
            )
        return " ".join([text, *self.notes])


def _find(
    prices: Sequence[Price], backend: str, instance: str, region: str, acc: str | None
) -> Price | None:
    for p in prices:
        if (p.backend, p.instance_type, p.region, p.accelerator) == (
            backend,
            instance,
            region,
            acc,
        ):
            return p
    return None


def _find_with_fallback(
    prices: Sequence[Price], backend: str, instance: str, region: str, acc: str | None
) -> Price | None:
    """Find a price in ``region``, else in the backend's default region."""
    found = _find(prices, backend, instance, region, acc)
    if found is None:
        found = _find(prices, backend, instance, backend_facts(backend)["default_region"], acc)
    return found


def quote(
    backend: str,
    instance_type: str | None = None,
    *,
    region: str | None = None,
    accelerator_type: str | None = None,
    accelerator_count: int = 0,
    store: Store | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Quote:
    """Find the hourly price of a machine with its accelerators, with how it was found.

    Args:
        backend: the platform.
        instance_type: the machine type (default: the backend's default machine).
        region: default: the backend's default region; a region the catalog lacks falls back
            to the default region (said in ``notes``).
        accelerator_type: an accelerator attached to the machine (Vertex N1 machines).
        accelerator_count: how many of them.
        store: for the overrides and the local rate.
        settings: for local, may hold ``rate_per_hour``.

    Returns:
        A :class:`Quote`; its ``usd_per_hour`` is None when the machine or accelerator has no
        price.
    """
    if backend == "local":
        price = _local_price(store, settings)
        return Quote(price.usd_per_hour, (price,), "local")
    facts = backend_facts(backend)
    instance = instance_type or facts["default_instance"]
    region = region or facts["default_region"]
    prices = effective_prices(store)
    machine = _find_with_fallback(prices, backend, instance, region, None)
    if machine is None:
        note = f"{instance} has no price in the catalog for {backend}; add it in Settings."
        return Quote(None, (), region, (note,))
    parts = [machine]
    if accelerator_type and accelerator_count > 0:
        acc = _find_with_fallback(prices, backend, ANY_INSTANCE, region, accelerator_type)
        if acc is None:
            note = f"The accelerator {accelerator_type} has no price; add it in Settings."
            return Quote(None, (machine,), region, (note,))
        parts.append(acc)
    total = machine.usd_per_hour + sum(accelerator_count * p.usd_per_hour for p in parts[1:])
    notes = []
    if any(p.region != region for p in parts):
        notes.append(
            f"The catalog has no {region} price, so the {facts['default_region']} price is "
            f"used; set the {region} price in Settings if it differs."
        )
    return Quote(round(total, 6), tuple(parts), region, tuple(notes), accelerator_count)


def hourly_price(
    backend: str,
    instance_type: str,
    *,
    region: str | None = None,
    accelerator_type: str | None = None,
    accelerator_count: int = 0,
    store: Store | None = None,
) -> float | None:
    """Return dollars per hour of a machine plus its accelerators, or None when unknown.

    Local costs the ``local.rate_per_hour`` setting (default 0.0). A region the catalog lacks
    falls back to the backend's default region. Overrides in ``store`` win over the catalog.
    """
    return quote(
        backend,
        instance_type,
        region=region,
        accelerator_type=accelerator_type,
        accelerator_count=accelerator_count,
        store=store,
    ).usd_per_hour


def instance_types(backend: str, *, store: Store | None = None) -> list[str]:
    """Return the machine types with a price for ``backend`` (for the Launch page pickers)."""
    if backend == "local":
        return ["local"]
    prices = effective_prices(store) if store is not None else load_catalog()
    seen: dict[str, None] = {}
    for p in prices:
        if p.backend == backend and p.accelerator is None and p.instance_type != ANY_INSTANCE:
            seen.setdefault(p.instance_type)
    return list(seen)


def accelerator_types(backend: str, *, store: Store | None = None) -> list[str]:
    """Return the accelerator add-ons with a price for ``backend``."""
    prices = effective_prices(store) if store is not None else load_catalog()
    seen: dict[str, None] = {}
    for p in prices:
        if p.backend == backend and p.accelerator:
            seen.setdefault(p.accelerator)
    return list(seen)


def trial_cost(seconds: float, price_per_hour: float | None) -> float | None:
    """Return the cost of ``seconds`` of billable time at ``price_per_hour`` (None if unknown)."""
    if price_per_hour is None or seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, float(seconds)) * float(price_per_hour) / 3600.0


# ----------------------------------------------------------------------------- model size


def representative_params(spec: StudySpec) -> dict[str, Any]:
    """Return one configuration standing for the space: midpoints, middle choices, defaults.

    Floats take the middle of their range (geometric on a log scale), ints the rounded middle,
    choices of numbers the median value, choices of strings the first value.
    """
    from core.spec import ChoiceParam, FixedParam, FloatParam, IntParam

    params: dict[str, Any] = spec.fixed_values()
    for p in spec.space:
        if isinstance(p, FloatParam):
            mid = math.sqrt(p.min * p.max) if p.scale == "log" else (p.min + p.max) / 2
            params[p.name] = mid
        elif isinstance(p, IntParam):
            mid = math.sqrt(p.min * p.max) if p.scale == "log" else (p.min + p.max) / 2
            params[p.name] = int(round(mid))
        elif isinstance(p, ChoiceParam):
            values = list(p.values)
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            params[p.name] = sorted(values)[(len(values) - 1) // 2] if numeric else values[0]
        elif isinstance(p, FixedParam):
            params[p.name] = p.value
    return params


def work_units(params: Mapping[str, Any], shape: Sequence[int], classes: int = 10) -> float:
    """Return the multiply-adds of one forward pass of the CNN for one image.

    A proxy for model size in forecasts (the parameter count is not stored): conv blocks with
    doubling filters and 2x2 pooling while the map is at least 2x2, then the dense head, as in
    ``core.model.build_model``.
    """
    from core.spec import default_params

    p = {**default_params(), **dict(params)}
    height, width, cin = (int(d) for d in shape)
    k, total = _int(p["kernel_size"]), 0.0
    for i in range(_int(p["conv_blocks"])):
        filters = _int(p["filters"]) * 2**i
        total += height * width * k * k * cin * filters
        cin = filters
        if min(height, width) >= 2:
            height, width = height // 2, width // 2
    dense = _int(p["dense_units"])
    total += height * width * cin * dense + dense * classes
    return float(total)


def _int(value: Any) -> int:
    """Cast 64, 64.0 or "64" (as clouds report parameters) to 64."""
    return int(float(value))


def train_examples(name: str, subset: int | None, validation_split: float) -> int | None:
    """Return how many training examples one epoch of a built-in dataset goes through."""
    facts = DATASET_FACTS.get(name)
    if facts is None:
        return subset
    full = int(facts["examples"] * (1 - validation_split))
    return min(subset, full) if subset else full


# ----------------------------------------------------------------------------- trial time


@dataclass(frozen=True)
class TrialTime:
    """Expected seconds of one trial (cloud start-up not included), its range and basis.

    Attributes:
        expected_s: the expected seconds of one trial.
        low_s: the low end of the range.
        high_s: the high end of the range.
        per_epoch_s: the seconds per epoch behind ``expected_s``.
        source: "history", "history-scaled", "calibration" or "table".
        sentence: the 'Expected time: ...' basis sentence.
        run_overhead_s: seconds once per run before the first trial (local worker start-up).
        overhead_sentence: where ``run_overhead_s`` comes from.
    """

    expected_s: float
    low_s: float
    high_s: float
    per_epoch_s: float
    source: str
    sentence: str
    run_overhead_s: float = 0.0
    overhead_sentence: str = ""


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _range(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return median, low and high: 10th-90th percentile, at least +-50% with few samples."""
    mid = statistics.median(samples)
    low, high = _percentile(samples, 0.1), _percentile(samples, 0.9)
    if len(samples) < 5:
        low = min(low, mid * (1 - NO_HISTORY_SPREAD))
        high = max(high, mid * (1 + NO_HISTORY_SPREAD))
    return mid, low, high


def speed_factor(instance_type: str | None, accelerator_type: str | None = None) -> float | None:
    """Return seconds per epoch relative to ml.m5.xlarge (lower is faster), None if unknown.

    With an accelerator attached its factor is used (one device trains each trial).
    """
    table = catalog_data()["relative_speed"]
    if accelerator_type:
        return table["accelerators"].get(accelerator_type)
    if instance_type is None:
        return None
    factor = table["instances"].get(instance_type)
    return None if factor is None else float(factor)


def local_contention(parallel: int, cpus: int | None = None) -> float:
    """Return how much slower each local trial runs with ``parallel`` trials on this machine.

    Assumes one trial keeps about LOCAL_CORES_PER_TRIAL cores busy (TensorFlow's compute
    threads plus Python and graph tracing), so trials slow down once
    parallel x LOCAL_CORES_PER_TRIAL exceeds the cores. History at the same parallelism
    replaces this assumption.
    """
    cores = cpus or os.cpu_count() or 1
    return max(1.0, parallel * LOCAL_CORES_PER_TRIAL / cores)


@dataclass(frozen=True)
class _Target:
    """What a forecast is for: the machine, the data, the model and the parallelism."""

    backend: str
    instance: str
    accelerator: str | None
    dataset: str
    path: str | None
    subset: int | None
    examples: int | None
    shape: tuple[int, int, int] | None
    work: float | None
    epochs: int
    parallel: int

    @property
    def machine(self) -> str:
        """The machine's key: instance type, plus '+accelerator' when one is attached."""
        return _machine_key(self.instance, self.accelerator)


def _target(backend: str, spec: StudySpec, machine: Mapping[str, Any]) -> _Target:
    ds = spec.dataset
    facts = DATASET_FACTS.get(ds.name)
    shape = tuple(facts["shape"]) if facts else None
    work = work_units(representative_params(spec), shape) if shape else None
    return _Target(
        backend=backend,
        instance=machine["instance_type"],
        accelerator=machine["accelerator_type"] if machine["accelerator_count"] else None,
        dataset=ds.name,
        path=ds.path,
        subset=ds.subset,
        examples=train_examples(ds.name, ds.subset, ds.validation_split),
        shape=shape,  # type: ignore[arg-type]
        work=work,
        epochs=spec.budget.epochs,
        parallel=spec.budget.parallel_trials,
    )


def _machine_key(instance: str | None, accelerator: str | None) -> str:
    """Name a machine with its accelerator, e.g. 'n1-standard-8+NVIDIA_TESLA_V100'."""
    return f"{instance}+{accelerator}" if accelerator else str(instance or "")


def _run_machine(run: RunRow, trial: TrialRow) -> tuple[str, str | None]:
    """Return (machine key, accelerator) a history trial ran on."""
    if run.backend == "local":
        return "local", None
    settings = {**run.settings, "instance_type": trial.instance_type or run.instance_type}
    m = machine_settings(run.backend, settings)
    return _machine_key(m["instance_type"], m["accelerator_type"]), m["accelerator_type"]


@dataclass(frozen=True)
class _Fixed:
    """The costs that do not grow with the data: per trial (build, tracing) and per epoch."""

    trial_s: float
    epoch_s: float


def _fixed_costs(store: Store | None, target: _Target) -> _Fixed:
    """Return this machine's fixed costs: a stored calibration's (local), else the catalog's."""
    table = catalog_data()["relative_speed"]
    fixed = _Fixed(float(table["trial_fixed_s"]), float(table["epoch_fixed_s"]))
    if target.backend != "local" or store is None:
        return fixed
    stored = store.get_setting(calibration_key(target.dataset, target.subset))
    if isinstance(stored, Mapping) and "per_step_s" in stored:
        compute = stored["per_step_s"] * stored["examples"] / stored["batch_size"]
        return _Fixed(stored["overhead_s"], max(stored["per_epoch_s"] - compute, 0.0))
    return fixed


def _history_runs(store: Store, target: _Target) -> list[RunRow]:
    """Return the newest runs on the same dataset (and, for custom data, the same path)."""
    return [r for r in store.list_runs()[:HISTORY_RUNS] if _same_data(r.spec, target)]


def _history_samples(store: Store, target: _Target, runs: list[RunRow]) -> list[dict[str, Any]]:
    """Return earlier completed trials of ``runs``, scaled to the target's data and model.

    Each sample holds fixed_s (seconds a trial spends outside its epochs) and per_epoch_s,
    with its run's parallelism, machine, speed factor and backend.
    """
    if not runs:
        return []
    epoch_times = _epoch_times(store, [r.id for r in runs])
    fixed = _fixed_costs(store, target)
    out: list[dict[str, Any]] = []
    for run in runs:
        for trial in store.list_trials(run.id, status="completed"):
            sample = _sample(run, trial, epoch_times.get(trial.id, []), target, fixed)
            if sample is not None:
                out.append(sample)
    return out


def _same_data(spec: Mapping[str, Any], target: _Target) -> bool:
    ds = spec.get("dataset") or {}
    if ds.get("name") != target.dataset:
        return False
    return target.dataset != "custom" or ds.get("path") == target.path


def _epoch_times(store: Store, run_ids: list[int]) -> dict[int, list[float]]:
    """Return, per trial id, the times its epochs were recorded, in order."""
    frame = store.epochs_frame(run_ids)
    if frame.empty:
        return {}
    return {int(k): sorted(float(a) for a in part["at"]) for k, part in frame.groupby("trial_id")}


def _sample(
    run: RunRow, trial: TrialRow, epoch_at: list[float], target: _Target, fixed: _Fixed
) -> dict[str, Any] | None:
    """Split one trial's seconds into fixed and per-epoch parts and scale them to the target.

    Local trials: the gaps between their epochs' timestamps give the seconds per epoch, the
    rest of the trial is fixed. Cloud trials (no reliable epoch times): the billed start-up
    and the catalog's fixed cost per trial are taken out and the rest spread over the epochs.
    The data-bound part of an epoch is scaled by data size and model work.
    """
    seconds = trial.duration_s
    if seconds is None and trial.started_at is not None and trial.ended_at is not None:
        seconds = trial.ended_at - trial.started_at
    budget = run.spec.get("budget") or {}
    epochs = len(epoch_at) or int(budget.get("epochs") or 0)
    if not seconds or seconds <= 0 or not epochs:
        return None
    if run.backend != "local":
        startup = float(backend_facts(run.backend)["billed_startup_s_per_trial"])
        seconds = max(seconds - startup, 0.1 * seconds)
    gaps = [b - a for a, b in zip(epoch_at, epoch_at[1:], strict=False)]
    if run.backend == "local" and gaps:
        per_epoch = statistics.median(gaps)
        trial_fixed = max(seconds - epochs * per_epoch, 0.0)
    else:
        trial_fixed = min(fixed.trial_s, 0.5 * seconds)
        per_epoch = (seconds - trial_fixed) / epochs
    compute = max(per_epoch - fixed.epoch_s, 0.1 * per_epoch)
    per_epoch -= compute
    compute *= _scale(run, trial, target)
    key, accelerator = _run_machine(run, trial)
    return {
        "instance": key,
        "speed": speed_factor(key.split("+")[0], accelerator),
        "backend": run.backend,
        "parallel": int(budget.get("parallel_trials") or 1),
        "fixed_s": trial_fixed,
        "per_epoch_s": per_epoch + compute,
        "run_id": run.id,
    }


def _scale(run: RunRow, trial: TrialRow, target: _Target) -> float:
    """Return how much more data-bound work an epoch of the target does than the trial's."""
    ds = run.spec.get("dataset") or {}
    ratio = 1.0
    examples = train_examples(
        target.dataset, ds.get("subset"), float(ds.get("validation_split", 0.2))
    )
    if examples and target.examples:
        ratio *= target.examples / examples
    if target.work and target.shape:
        ratio *= target.work / work_units(trial.params, target.shape)
    return ratio


def _trial_seconds(s: Mapping[str, Any], target: _Target, factor: float = 1.0) -> float:
    return (s["fixed_s"] + target.epochs * s["per_epoch_s"]) * factor


def _from_history(store: Store, target: _Target, runs: list[RunRow]) -> TrialTime | None:
    """Estimate from earlier trials: same machine first, then other cloud machines."""
    samples = _history_samples(store, target, runs)
    same = [s for s in samples if s["instance"] == target.machine]
    if same and target.backend == "local":
        return _from_local_history(store, target, runs, same)
    if same:
        values = [_trial_seconds(s, target) for s in same]
        return _history_time(target, values, same, "history", f"on {target.machine}")
    if target.backend == "local":
        return None
    mine = speed_factor(target.instance, target.accelerator)
    usable = [s for s in samples if s["backend"] != "local" and s["speed"] and mine]
    if not usable or mine is None:
        return None
    values = [_trial_seconds(s, target, mine / s["speed"]) for s in usable]
    sources = ", ".join(sorted({s["instance"] for s in usable}))
    return _history_time(
        target,
        values,
        usable,
        "history-scaled",
        f"on {sources}, scaled to {target.machine} by the relative-speed table",
    )


def _from_local_history(
    store: Store, target: _Target, runs: list[RunRow], same: list[dict[str, Any]]
) -> TrialTime:
    """Estimate local trials, preferring earlier runs with the same parallelism."""
    at_p = [s for s in same if s["parallel"] == target.parallel]
    mine = local_contention(target.parallel)
    if at_p:
        values = [_trial_seconds(s, target) for s in at_p]
        where = f"on this machine with {target.parallel} at once"
        used = at_p
    else:
        values = [_trial_seconds(s, target, mine / local_contention(s["parallel"])) for s in same]
        where = (
            f"on this machine at other parallelism, scaled to {target.parallel} at once "
            f"(each trial keeps about {LOCAL_CORES_PER_TRIAL:g} of {os.cpu_count()} cores busy)"
        )
        used = same
    tt = _history_time(target, values, used, "history", where)
    overhead, sentence = _local_startup(store, target, runs)
    return replace(tt, run_overhead_s=overhead, overhead_sentence=sentence)


def _history_time(
    target: _Target,
    values: list[float],
    used: list[dict[str, Any]],
    source: str,
    where: str,
) -> TrialTime:
    mid, low, high = _range(values)
    fixed = statistics.median(s["fixed_s"] for s in used)
    per_epoch = statistics.median(s["per_epoch_s"] for s in used)
    n = len(values)
    return TrialTime(
        expected_s=mid,
        low_s=low,
        high_s=high,
        per_epoch_s=per_epoch,
        source=source,
        sentence=(
            f"Expected time: from {n} earlier trial{'s' if n != 1 else ''} on {target.dataset} "
            f"{where} (median {fixed:.3g} s outside epochs and {per_epoch:.3g} s per epoch, "
            f"scaled to this spec's data and model size); {target.epochs} epochs a trial = "
            f"{mid:.3g} s a trial (range {low:.3g} to {high:.3g} s: the 10th to 90th "
            f"percentile{', at least +-50%' if n < 5 else ''})."
        ),
    )


def _local_startup(store: Store | None, target: _Target, runs: list[RunRow]) -> tuple[float, str]:
    """Return the seconds a local run spends before its first trial, and their basis."""
    mine = local_contention(target.parallel)
    seen: list[tuple[int, float]] = []
    for run in runs:
        if run.backend != "local" or run.started_at is None or store is None:
            continue
        starts = [t.started_at for t in store.list_trials(run.id) if t.started_at is not None]
        if starts:
            p = int((run.spec.get("budget") or {}).get("parallel_trials") or 1)
            seen.append((p, max(min(starts) - run.started_at, 0.0)))
    same = [s for p, s in seen if p == target.parallel]
    what = "Local start-up (TensorFlow, data and tuner set-up before the first trial)"
    if same:
        value = statistics.median(same)
        return value, (
            f"{what}: {value:.3g} s, the median of {len(same)} earlier run"
            f"{'s' if len(same) != 1 else ''} with {target.parallel} at once."
        )
    if seen:
        value = statistics.median(s * mine / local_contention(p) for p, s in seen)
        return value, (
            f"{what}: {value:.3g} s, from {len(seen)} earlier run"
            f"{'s' if len(seen) != 1 else ''} at other parallelism, scaled."
        )
    base = float(backend_facts("local")["first_wave_extra_s"])
    return base * mine, (
        f"{what}: {base * mine:.3g} s, the catalog's {base:g} s measured on a 2-core machine"
        + (f", x{mine:.2g} for {target.parallel} at once." if mine > 1 else ".")
    )


def _from_table(target: _Target) -> TrialTime | None:
    """Estimate from the reference machine's timing and the relative-speed table."""
    table = catalog_data()["relative_speed"]
    ref = table["reference_compute_s_per_epoch"].get(target.dataset)
    factor = speed_factor(target.instance, target.accelerator)
    if ref is None or factor is None or target.work is None or target.shape is None:
        return None
    full = train_examples(target.dataset, None, 0.2) or 1
    compute = float(ref) * factor * (target.work / work_units({}, target.shape))
    compute *= (target.examples or full) / full
    per_epoch = compute + float(table["epoch_fixed_s"])
    trial = float(table["trial_fixed_s"]) + target.epochs * per_epoch
    return TrialTime(
        expected_s=trial,
        low_s=trial * (1 - NO_HISTORY_SPREAD),
        high_s=trial * (1 + NO_HISTORY_SPREAD),
        per_epoch_s=per_epoch,
        source="table",
        sentence=(
            f"Expected time: no earlier trials on {target.dataset} on {target.machine}, so the "
            f"relative-speed table ({table['reference']} computes an epoch of the default CNN "
            f"in {float(ref):.3g} s, {target.accelerator or target.instance} x{factor:g}, "
            f"scaled to this spec's data and model size, + {float(table['epoch_fixed_s']):g} s "
            f"fixed per epoch = {per_epoch:.3g} s per epoch); {target.epochs} epochs + "
            f"{float(table['trial_fixed_s']):g} s to build the model = {trial:.3g} s a trial "
            "(range +-50%)."
        ),
    )


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """A short timing of the CNN on this machine.

    Attributes:
        per_epoch_s: seconds for one epoch over the whole training split (with validation).
        overhead_s: seconds a trial spends before its first epoch (build, graph tracing).
        per_step_s: seconds per training step (with its share of validation).
        steps: training steps timed.
        batch_size: the batch size timed.
        work: work units of the configuration timed.
        examples: training examples of a full epoch.
        synthetic: True when random arrays of the dataset's shape stood in for the data.
        measured_at: a Unix time.
    """

    per_epoch_s: float
    overhead_s: float
    per_step_s: float
    steps: int
    batch_size: int
    work: float
    examples: int
    synthetic: bool
    measured_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form kept in the store."""
        return dict(self.__dict__)


def calibration_key(dataset: str, subset: int | None) -> str:
    """Return the store setting key of a calibration: ``calibration.<dataset>.<subset>``."""
    return f"{CALIBRATION_PREFIX}{dataset}.{subset if subset else 'all'}"


def _calibration_arrays(spec: StudySpec, rows: int) -> tuple[Any, Any, int, bool]:
    """Return (x, y, training examples of a full epoch, synthetic?) for timing."""
    import numpy as np

    ds = spec.dataset
    try:
        from core.data import load_dataset

        data = load_dataset(
            ds.name, path=ds.path, subset=ds.subset, validation_split=ds.validation_split
        )
        x, y = np.asarray(data.x_train), np.asarray(data.y_train)
        reps = -(-rows // len(x))
        return np.concatenate([x] * reps)[:rows], np.concatenate([y] * reps)[:rows], len(x), False
    except (ImportError, DatasetError, OSError):
        facts = DATASET_FACTS.get(ds.name)
        if facts is None:
            raise DatasetError(
                f"Cannot calibrate on {ds.name}: its data cannot be loaded here and its shape "
                "is unknown; check dataset.path or run a trial to build history."
            ) from None
        rng = np.random.default_rng(0)
        x = rng.random((rows, *facts["shape"]), dtype=np.float32)
        y = rng.integers(0, facts["classes"], rows).astype("int32")
        examples = train_examples(ds.name, ds.subset, ds.validation_split) or rows
        return x, y, examples, True


def calibrate_local(spec: StudySpec, *, steps: int = 6) -> Calibration:
    """Time a few training steps of the spec's representative CNN on this machine.

    Fits one warm-up epoch of ``steps`` batches (building and tracing the model), then
    ``steps`` and ``3 * steps`` batches: the difference gives the seconds per step, the rest
    the fixed cost per epoch. Validation is included at the spec's split.

    Raises:
        DatasetError: the dataset can neither be loaded nor stood in for.
    """
    import keras  # noqa: F401  (imported before timing: a worker has it loaded already)

    from core import model as cnn

    params = representative_params(spec)
    batch = int(params.get("batch_size", 64))
    x, y, examples, synthetic = _calibration_arrays(spec, 3 * steps * batch)
    shape = tuple(int(d) for d in x.shape[1:])
    classes = max(int(y.max()) + 1, 2)
    frac = spec.dataset.validation_split

    def fit(n: int) -> float:
        rows = n * batch
        val_rows = batch * max(1, round(n * frac / (1 - frac)))
        start = time.perf_counter()
        net.fit(
            x[:rows],
            y[:rows],
            batch_size=batch,
            epochs=1,
            verbose=0,
            validation_data=(x[:val_rows], y[:val_rows]),
        )
        return time.perf_counter() - start

    start = time.perf_counter()
    net = cnn.build_model(params, shape, classes, spec.model or None)  # type: ignore[arg-type]
    warm = fit(steps) + (time.perf_counter() - start)
    short, long_ = fit(steps), fit(3 * steps)
    per_step = max((long_ - short) / (2 * steps), 1e-6)
    fixed = max(short - steps * per_step, 0.0)
    cnn.clear_session()
    return Calibration(
        per_epoch_s=fixed + per_step * examples / batch,
        overhead_s=max(warm - short, 0.0),
        per_step_s=per_step,
        steps=steps,
        batch_size=batch,
        work=work_units(params, shape, classes),
        examples=examples,
        synthetic=synthetic,
        measured_at=time.time(),
    )


def cached_calibration(
    spec: StudySpec, store: Store | None, *, run: bool = True, steps: int = 6
) -> Calibration | None:
    """Return the stored calibration for the spec's dataset, timing one when there is none.

    Args:
        spec: the study.
        store: where calibrations are kept (``calibration.<dataset>.<subset>``).
        run: time one when none is stored (False: return None instead).
        steps: training steps to time.
    """
    key = calibration_key(spec.dataset.name, spec.dataset.subset)
    stored = store.get_setting(key) if store is not None else None
    if isinstance(stored, Mapping):
        try:
            return Calibration(**stored)
        except TypeError:
            pass
    if not run:
        return None
    cal = calibrate_local(spec, steps=steps)
    if store is not None:
        store.set_setting(key, cal.to_dict())
    return cal


def _from_calibration(store: Store | None, cal: Calibration, target: _Target) -> TrialTime:
    """Estimate from a calibration, its compute scaled to the spec's model and data size."""
    compute = cal.per_step_s * cal.examples / cal.batch_size
    fixed_epoch = max(cal.per_epoch_s - compute, 0.0)
    if target.work:
        compute *= target.work / cal.work
    if target.examples:
        compute *= target.examples / cal.examples
    per_epoch = fixed_epoch + compute
    mine = local_contention(target.parallel)
    trial = (cal.overhead_s + target.epochs * per_epoch) * mine
    slower = (
        f"; {target.parallel} at once run x{mine:.2g} slower each (a trial keeps about "
        f"{LOCAL_CORES_PER_TRIAL:g} of {os.cpu_count()} cores busy)"
        if mine > 1
        else ""
    )
    overhead, sentence = _local_startup(store, target, [])
    return TrialTime(
        expected_s=trial,
        low_s=trial * (1 - NO_HISTORY_SPREAD),
        high_s=trial * (1 + NO_HISTORY_SPREAD),
        per_epoch_s=per_epoch,
        source="calibration",
        sentence=(
            f"Expected time: no earlier trials on {target.dataset} on this machine, so a "
            f"calibration of {cal.steps * 5} training steps at batch {cal.batch_size}"
            f"{' on random arrays of its shape' if cal.synthetic else ''} ({per_epoch:.3g} s "
            f"per epoch scaled to this spec's model and data size, {cal.overhead_s:.2g} s to "
            f"build and trace the model); {target.epochs} epochs a trial{slower} = "
            f"{trial:.3g} s a trial (range +-50%)."
        ),
        run_overhead_s=overhead,
        overhead_sentence=sentence,
    )


# ----------------------------------------------------------------------------- forecast


def machine_settings(backend: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Read instance_type, region, accelerator_type and accelerator_count from settings.

    Accepts the backends' own names too (machine_type, vm_size, location); missing values
    take the backend's defaults from the catalog.
    """
    out: dict[str, Any] = {}
    for name, aliases in _SETTING_ALIASES.items():
        out[name] = next((settings[a] for a in aliases if settings.get(a) not in (None, "")), None)
    facts = backend_facts(backend)
    out["instance_type"] = out["instance_type"] or facts["default_instance"]
    out["region"] = out["region"] or facts["default_region"]
    count = out["accelerator_count"]
    out["accelerator_count"] = int(count) if count else (1 if out["accelerator_type"] else 0)
    if not out["accelerator_count"]:
        out["accelerator_type"] = None
    return out


def estimate_trial_time(
    backend: str,
    spec: StudySpec,
    settings: Mapping[str, Any],
    store: Store | None = None,
    *,
    calibrate: bool = True,
) -> TrialTime | None:
    """Return the expected compute seconds of one trial, from the best basis available.

    Order: earlier trials on the same machine type; earlier trials on other cloud machine
    types scaled by the relative-speed table; for local, a calibration (timed once and kept in
    the store); for clouds, the relative-speed table. None when nothing applies.
    """
    target = _target(backend, spec, machine_settings(backend, settings))
    if store is not None:
        found = _from_history(store, target, _history_runs(store, target))
        if found is not None:
            return found
    if backend == "local":
        try:
            cal = cached_calibration(spec, store, run=calibrate)
        except (CloudTuneError, ImportError, ValueError, RuntimeError):
            cal = None
        return _from_calibration(store, cal, target) if cal is not None else None
    return _from_table(target)


def _waves(n: int, parallel: int) -> int:
    return math.ceil(n / max(1, parallel))


def forecast(
    backend: str,
    spec: StudySpec,
    settings: Mapping[str, Any],
    store: Store | None = None,
    *,
    calibrate: bool = True,
) -> Forecast:
    """Forecast the wall time and cost of running ``spec`` on one platform.

    Wall time: ceil(max_trials / parallel_trials) waves, each one trial long plus the cloud's
    start-up (``assets/pricing.json``, per backend). Cost: clouds bill every trial's instance
    time plus its billed start-up; local bills the machine's wall time at the local rate.
    Worst case: max_trials x the per-trial runtime cap (budget.max_minutes) x price.

    Args:
        backend: "local", "sagemaker", "vertex" or "azure".
        spec: the study.
        settings: the backend's settings (instance_type, region, accelerator_type,
            accelerator_count; the backends' own names are accepted).
        store: for history, price overrides, the local rate and calibrations.
        calibrate: for local without history, time a few steps when no calibration is stored.

    Returns:
        A :class:`~core.backends.base.Forecast` whose ``basis`` says where each number comes
        from.
    """
    machine = machine_settings(backend, settings)
    q = quote(
        backend,
        machine["instance_type"],
        region=machine["region"],
        accelerator_type=machine["accelerator_type"],
        accelerator_count=machine["accelerator_count"],
        store=store,
        settings=settings,
    )
    fc = Forecast(backend=backend, instance_type=machine["instance_type"])
    fc.price_per_hour = q.usd_per_hour
    tt = estimate_trial_time(backend, spec, settings, store, calibrate=calibrate)
    fc.basis.extend(_expected(fc, tt, spec, backend_facts(backend), q.usd_per_hour))
    widened = _widen(fc, _past_errors(store, backend)) if store is not None else None
    fc.basis.extend([widened] if widened else [])
    fc.basis.append(q.sentence())
    fc.basis.extend(_worst(fc, spec, backend_facts(backend), q.usd_per_hour))
    return fc


def _past_errors(store: Store, backend: str) -> list[float]:
    """Return the wall-time errors recorded on this backend's earlier runs (newest first)."""
    errors = []
    for run in store.list_runs()[:HISTORY_RUNS]:
        error = (run.forecast or {}).get("error") if run.backend == backend else None
        value = error.get("wall_rel_error") if isinstance(error, Mapping) else None
        if value is not None and float(value) > -1:
            errors.append(float(value))
    return errors


def _widen(fc: Forecast, errors: list[float]) -> str | None:
    """Widen the ranges to cover the 10th-90th percentile of earlier forecasts' errors.

    A forecast's error is (expected - actual) / actual, so actual = expected / (1 + error).
    Needs MIN_ERRORS_TO_WIDEN earlier errors; returns the basis sentence, or None.
    """
    if len(errors) < MIN_ERRORS_TO_WIDEN or fc.expected_wall_s is None:
        return None
    low_f = 1 / (1 + _percentile(errors, 0.9))
    high_f = 1 / (1 + _percentile(errors, 0.1))
    fc.low_wall_s = min(fc.low_wall_s or fc.expected_wall_s, fc.expected_wall_s * low_f)
    fc.high_wall_s = max(fc.high_wall_s or fc.expected_wall_s, fc.expected_wall_s * high_f)
    if fc.expected_cost_usd is not None:
        cost = fc.expected_cost_usd
        fc.low_cost_usd = min(
            fc.low_cost_usd if fc.low_cost_usd is not None else cost, cost * low_f
        )
        fc.high_cost_usd = max(fc.high_cost_usd or cost, cost * high_f)
    return (
        f"Range: widened to cover how far the last {len(errors)} forecasts on this platform "
        f"missed (actual between x{low_f:.2g} and x{high_f:.2g} of expected): "
        f"{fmt_duration(fc.low_wall_s)} to {fmt_duration(fc.high_wall_s)}."
    )


def _run_totals(
    trial_s: float,
    spec: StudySpec,
    facts: Mapping[str, Any],
    price: float | None,
    once: float,
    end: int = -1,
) -> tuple[float, float | None]:
    """Return (wall seconds, cost) of the whole run for a per-trial time.

    ``once`` is the time spent once before the first wave (local worker start-up, Azure's
    cluster scale-up). ``end`` picks the start-up time: -1 the expected one, 0 or 1 the low or
    high end of the backend's start-up range.
    """
    b = spec.budget
    startup = float(facts["startup_s_per_trial"])
    if end >= 0 and facts.get("startup_range_s"):
        startup = float(facts["startup_range_s"][end])
    ratio = startup / facts["startup_s_per_trial"] if facts["startup_s_per_trial"] else 0.0
    waves = _waves(b.max_trials, b.parallel_trials)
    wall = waves * (trial_s + startup) + once
    if price is None:
        return wall, None
    if facts.get("billing") == "per_machine":
        return wall, wall * price / 3600
    machines = min(b.parallel_trials, b.max_trials)
    billed = b.max_trials * (trial_s + facts["billed_startup_s_per_trial"] * ratio)
    billed += machines * (facts["billed_tail_s_per_machine"] + facts["first_wave_extra_s"])
    return wall, billed * price / 3600


def _expected(
    fc: Forecast,
    tt: TrialTime | None,
    spec: StudySpec,
    facts: Mapping[str, Any],
    price: float | None,
) -> list[str]:
    """Fill the expected figures and return their basis sentences (time, wall, cost)."""
    if tt is None:
        return [
            "Expected time: unknown: no earlier trials on this dataset and machine, and no "
            "calibration or reference timing applies; run one trial to build history."
        ]
    local = facts.get("billing") == "per_machine"
    once = tt.run_overhead_s if local else float(facts["first_wave_extra_s"])
    fc.expected_wall_s, fc.expected_cost_usd = _run_totals(tt.expected_s, spec, facts, price, once)
    fc.low_wall_s, fc.low_cost_usd = _run_totals(tt.low_s, spec, facts, price, once, 0)
    fc.high_wall_s, fc.high_cost_usd = _run_totals(tt.high_s, spec, facts, price, once, 1)
    b = spec.budget
    waves = _waves(b.max_trials, b.parallel_trials)
    wall = (
        f"Wall time: {waves} wave{'s' if waves != 1 else ''} of up to {b.parallel_trials} "
        f"trial{'s' if b.parallel_trials != 1 else ''} x {tt.expected_s:.3g} s"
    )
    start = facts["startup_s_per_trial"]
    wall += f" + {start:g} s start-up each" if start else ""
    wall += f" + {once:.3g} s once" if once else ""
    wall += f" = {fmt_duration(fc.expected_wall_s)}."
    if local:
        wall += f" {tt.overhead_sentence}" if tt.overhead_sentence else ""
    elif start or once:
        wall += f" Start-up: {facts['overhead_basis']}"
    out = [tt.sentence, wall]
    if price is not None and fc.expected_cost_usd is not None:
        what = (
            "the machine's wall time at the local rate"
            if local
            else f"{b.max_trials} trials of billed time (start-up included) at the price below"
        )
        out.append(
            f"Expected cost: ${fc.expected_cost_usd:.2f} (range ${fc.low_cost_usd or 0:.2f} "
            f"to ${fc.high_cost_usd or 0:.2f}), {what}."
        )
    return out


def _worst(
    fc: Forecast, spec: StudySpec, facts: Mapping[str, Any], price: float | None
) -> list[str]:
    b = spec.budget
    out = []
    if b.max_minutes is None:
        out.append(
            "Worst case: none, because the spec sets no time cap; set budget.max_minutes to "
            "bound the time and cost."
        )
    else:
        cap_s = b.max_minutes * 60
        waves = _waves(b.max_trials, b.parallel_trials)
        fc.worst_wall_s = waves * cap_s + waves * facts["startup_s_per_trial"]
        sentence = (
            f"Worst case: {b.max_trials} trials x {b.max_minutes:g} min (the per-trial runtime "
            f"cap, budget.max_minutes) in {waves} waves = {fmt_duration(fc.worst_wall_s)}"
        )
        if price is not None:
            fc.worst_cost_usd = b.max_trials * cap_s * price / 3600
            sentence += f", x ${price:.4g}/h = ${fc.worst_cost_usd:.2f}"
            if facts.get("billing") == "per_machine":
                fc.worst_cost_usd = fc.worst_wall_s * price / 3600
                sentence += f" (local bills wall time: ${fc.worst_cost_usd:.2f})"
        out.append(
            sentence + f"; while CloudTune watches the run it stops at {b.max_minutes:g} min."
        )
    if b.max_cost_usd is not None:
        out.append(
            f"Cost cap: the run stops before a trial that would take spending past "
            f"${b.max_cost_usd:.2f} (budget.max_cost_usd)."
        )
    return out


def fmt_duration(seconds: float | None) -> str:
    """Return '45 s', '12.5 min' or '3.2 h'."""
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------------------- budget caps


def next_trial_would_exceed(
    spec_budget: Budget,
    *,
    elapsed_s: float,
    spent_usd: float,
    mean_trial_s: float,
    parallel: int,
    price_per_hour: float,
    billing: str = "per_trial",
) -> str | None:
    """Say whether starting one more trial now would break the time or cost cap.

    Time: the trial would end at elapsed_s + mean_trial_s. Cost, billed per trial (clouds):
    spent_usd + the new trial + the unfinished half of the other (parallel - 1) trials in
    flight. Cost, billed per machine (local): the machine's time until the trial ends.

    Args:
        spec_budget: the spec's budget (max_minutes, max_cost_usd).
        elapsed_s: seconds since the run started.
        spent_usd: dollars spent so far.
        mean_trial_s: mean seconds of a finished trial (or the forecast's, before any).
        parallel: trials at once.
        price_per_hour: dollars per machine hour.
        billing: "per_trial" (clouds) or "per_machine" (local).

    Returns:
        A sentence starting with 'stopped: budget reached' when a cap would be broken, or None.
    """
    if spec_budget.max_minutes is not None:
        cap = spec_budget.max_minutes * 60
        ends = elapsed_s + mean_trial_s
        if ends > cap:
            return (
                f"{BUDGET_STOP_DETAIL}: the next trial would end at about {fmt_duration(ends)}, "
                f"past budget.max_minutes ({spec_budget.max_minutes:g} min)."
            )
    if spec_budget.max_cost_usd is not None:
        rate = max(0.0, price_per_hour or 0.0) / 3600
        if billing == "per_machine":
            projected = max(spent_usd, elapsed_s * rate) + mean_trial_s * rate
        else:
            in_flight = max(0, parallel - 1) * 0.5
            projected = spent_usd + mean_trial_s * rate * (1 + in_flight)
        if projected > spec_budget.max_cost_usd or spent_usd >= spec_budget.max_cost_usd > 0:
            return (
                f"{BUDGET_STOP_DETAIL}: the next trial would take spending to about "
                f"${projected:.2f}, past budget.max_cost_usd (${spec_budget.max_cost_usd:.2f})."
            )
    return None


# ----------------------------------------------------------------------------- actual cost


def billable_seconds(trial: TrialRow, now: float | None = None) -> float:
    """Return a trial's billable seconds: billable_s, else duration_s, else elapsed so far."""
    if trial.billable_s is not None:
        return float(trial.billable_s)
    if trial.duration_s is not None:
        return float(trial.duration_s)
    if trial.started_at is None:
        return 0.0
    end = trial.ended_at if trial.ended_at is not None else (now or time.time())
    return max(0.0, end - trial.started_at)


def _run_wall(run: RunRow, trials: Iterable[TrialRow], now: float | None) -> float:
    starts = [t.started_at for t in trials if t.started_at is not None]
    start = run.started_at or (min(starts) if starts else None)
    if start is None:
        return 0.0
    end = run.ended_at if run.ended_at is not None else (now or time.time())
    return max(0.0, end - start)


def live_cost(
    run: RunRow, trials: list[TrialRow], price_per_hour: float | None, now: float | None = None
) -> float:
    """Return the cost so far of a run.

    Clouds: billable seconds of finished trials (billable_s, else duration_s) plus the elapsed
    seconds of running ones, x price. Local: the run's wall time so far x the local rate.
    Without a price: the sum of the trials' recorded cost_usd.
    """
    if price_per_hour is None:
        return float(sum(t.cost_usd or 0.0 for t in trials))
    if run.backend == "local":
        return _run_wall(run, trials, now) * price_per_hour / 3600
    seconds = sum(billable_seconds(t, now) for t in trials)
    return seconds * price_per_hour / 3600


def run_price(run: RunRow, store: Store | None = None) -> float | None:
    """Return the hourly price of a run's machine (with accelerators), from its settings."""
    machine = machine_settings(run.backend, {**run.settings, "instance_type": run.instance_type})
    return quote(
        run.backend,
        machine["instance_type"],
        region=machine["region"],
        accelerator_type=machine["accelerator_type"],
        accelerator_count=machine["accelerator_count"],
        store=store,
        settings=run.settings,
    ).usd_per_hour


def finalize_run_costs(
    store: Store, run_id: int, *, price_per_hour: float | None = None, now: float | None = None
) -> dict[str, Any]:
    """Record each trial's and the run's final cost, and the forecast's error, in the store.

    Call once a run has ended. Trials get cost_usd = billable seconds x price (local: each
    trial's own seconds at the local rate); the run gets the total (local: its wall time at
    the rate) and, when it has a forecast, ``forecast["error"]`` from :func:`forecast_error`.

    Returns:
        {"cost_usd", "wall_s", "price_per_hour", "error"}.
    """
    run = store.get_run(run_id)
    price = price_per_hour if price_per_hour is not None else run_price(run, store)
    trials = store.list_trials(run_id)
    for t in trials:
        cost = trial_cost(billable_seconds(t, now), price)
        if cost is not None:
            store.upsert_trial(run_id, t.trial_key, cost_usd=round(cost, 6))
    total = live_cost(run, store.list_trials(run_id), price, now)
    wall = _run_wall(run, trials, now)
    store.update_run(run_id, cost_usd=round(total, 6))
    error = None
    if run.forecast:
        error = forecast_error(run.forecast, wall, total)
        store.update_run(run_id, forecast={**run.forecast, "error": error})
    return {"cost_usd": total, "wall_s": wall, "price_per_hour": price, "error": error}


def forecast_error(
    forecast: Mapping[str, Any], actual_wall_s: float, actual_cost_usd: float
) -> dict[str, Any]:
    """Compare a forecast with what happened.

    Relative error = (expected - actual) / actual (positive: the forecast was too high); None
    when either side is missing or the actual is 0.

    Returns:
        wall_rel_error, cost_rel_error, wall_in_range, cost_in_range, and the four figures.
    """

    def rel(expected: Any, actual: float) -> float | None:
        if expected is None or actual is None or actual <= 0:
            return None
        return (float(expected) - actual) / actual

    def inside(low: Any, high: Any, actual: float) -> bool | None:
        if low is None or high is None or actual is None:
            return None
        return bool(float(low) <= actual <= float(high))

    return {
        "expected_wall_s": forecast.get("expected_wall_s"),
        "actual_wall_s": actual_wall_s,
        "wall_rel_error": rel(forecast.get("expected_wall_s"), actual_wall_s),
        "wall_in_range": inside(
            forecast.get("low_wall_s"), forecast.get("high_wall_s"), actual_wall_s
        ),
        "expected_cost_usd": forecast.get("expected_cost_usd"),
        "actual_cost_usd": actual_cost_usd,
        "cost_rel_error": rel(forecast.get("expected_cost_usd"), actual_cost_usd),
        "cost_in_range": inside(
            forecast.get("low_cost_usd"), forecast.get("high_cost_usd"), actual_cost_usd
        ),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
