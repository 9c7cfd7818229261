"""Price catalog and quotes, budget caps, and the actual cost of runs.

Prices come from ``assets/pricing.json`` (each with its source and as-of date) and can be
overridden in the store's settings (``price.<backend>.<region>.<instance>[.<accelerator>]``);
the local machine costs the ``local.rate_per_hour`` setting (default 0). Forecasts of time and
cost are in :mod:`core.costs.forecasting`.

Example:
    >>> hourly_price("vertex", "n1-standard-8", accelerator_type="NVIDIA_TESLA_V100",
    ...              accelerator_count=2)
    6.141
    >>> live_cost(run, store.list_trials(run.id), run_price(run, store))
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends.platforms import PLATFORMS
from core.errors import CloudTuneError
from core.paths import ASSETS

if TYPE_CHECKING:
    import pandas as pd

    from core.spec import Budget
    from core.store import RunRow, Store, TrialRow

log = logging.getLogger(__name__)

CATALOG_PATH = ASSETS / "pricing.json"
STALE_AFTER_DAYS = 183
"""A price older than this (about 6 months) is shown with a warning."""
ANY_INSTANCE = "*"
"""instance_type of an accelerator add-on price: it applies to any machine it attaches to."""
LOCAL_RATE_KEY = "local.rate_per_hour"
LOCAL_RATE_AS_OF_KEY = "local.rate_as_of"
OVERRIDE_PREFIX = "price."
BUDGET_STOP_DETAIL = "stopped: budget reached"

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
        ) from err
    except ValueError as err:
        raise CloudTuneError(
            f"The price catalog {file} is not valid JSON ({err}); fix or restore it."
        ) from err


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
    if backend not in backends or backend not in PLATFORMS:
        raise CloudTuneError(f"Unknown platform {backend!r}; use one of {', '.join(backends)}.")
    known = PLATFORMS[backend]  # label and defaults live once, in the platform registry
    facts: dict[str, Any] = {
        **backends[backend],
        "label": known.label,
        "default_region": known.default_region,
        "default_instance": known.default_instance,
    }
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
    wanted = (backend, instance.lower(), region, acc)
    for p in prices:  # machine names are case-insensitive (Azure reports STANDARD_NC6S_V3)
        if (p.backend, p.instance_type.lower(), p.region, p.accelerator) == wanted:
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


def canonical_instance(backend: str, name: str) -> str:
    """Return ``name`` as the price catalog spells it (machine names are case-insensitive:
    Azure reports STANDARD_DS3_V2 for Standard_DS3_v2), else unchanged."""
    for p in load_catalog():
        if p.backend == backend and p.instance_type.lower() == name.lower():
            return p.instance_type
    return name


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


# ----------------------------------------------------------------------------- machine settings


def machine_quote(
    backend: str,
    machine: Mapping[str, Any],
    *,
    store: Store | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Quote:
    """:func:`quote` for the machine :func:`machine_settings` describes."""
    return quote(
        backend,
        machine["instance_type"],
        region=machine["region"],
        accelerator_type=machine["accelerator_type"],
        accelerator_count=machine["accelerator_count"],
        store=store,
        settings=settings,
    )


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
    """Say whether the run must stop now rather than start a trial that would break a cap.

    The one budget rule of every platform (the local worker asks before each trial, the cloud
    layer at each poll, where stopping the job also stops its running trials). Time: the next
    trial would end at ``elapsed_s + mean_trial_s``. Cost, billed per trial (clouds):
    ``spent_usd`` + the next trial + the unfinished half of the other (parallel - 1) trials in
    flight. Cost, billed per machine (local): the machine's time until the trial ends. With
    ``mean_trial_s`` 0 (no trial left to start, or none finished yet) it says whether a cap is
    already reached.

    Args:
        spec_budget: the spec's budget (max_minutes, max_cost_usd).
        elapsed_s: seconds the run has been running (RunRow.active_s).
        spent_usd: dollars spent so far.
        mean_trial_s: mean seconds of a finished trial (0 when none is left to start).
        parallel: trials at once.
        price_per_hour: dollars per trial hour (all of a trial's machines).
        billing: "per_trial" (clouds) or "per_machine" (local).

    Returns:
        A sentence starting with 'stopped: budget reached' when a cap would be broken, or None.
    """
    if spec_budget.max_minutes is not None:
        cap = spec_budget.max_minutes * 60
        ends = elapsed_s + mean_trial_s
        if ends > cap or elapsed_s >= cap:
            tail = f" and a trial takes about {fmt_duration(mean_trial_s)}" if mean_trial_s else ""
            return (
                f"{BUDGET_STOP_DETAIL}: budget.max_minutes is {spec_budget.max_minutes:g} min; "
                f"the run has run {fmt_duration(elapsed_s)}{tail}."
            )
    if spec_budget.max_cost_usd is not None:
        cap_usd = spec_budget.max_cost_usd
        rate = max(0.0, price_per_hour or 0.0) / 3600
        if billing == "per_machine":
            spent_usd = max(spent_usd, elapsed_s * rate)
            projected = spent_usd + mean_trial_s * rate
        else:
            in_flight = max(0, parallel - 1) * 0.5
            projected = spent_usd + mean_trial_s * rate * (1 + in_flight)
        if spent_usd >= cap_usd > 0 or (mean_trial_s and projected > cap_usd):
            tail = (
                f" and the next trial would take it to about ${projected:.2f}"
                if spent_usd < cap_usd
                else ""
            )
            return (
                f"{BUDGET_STOP_DETAIL}: budget.max_cost_usd is ${cap_usd:.2f}; "
                f"${spent_usd:.2f} is spent{tail}."
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
    """The run's running seconds (without time it sat stopped), else its trials' span."""
    wall = run.wall_s(now)
    if wall is not None:
        return wall
    starts = [t.started_at for t in trials if t.started_at is not None]
    if not starts:
        return 0.0
    end = run.ended_at if run.ended_at is not None else (now or time.time())
    return max(0.0, end - min(starts))


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


def run_price(
    run: RunRow, store: Store | None = None, *, instance_type: str | None = None
) -> float | None:
    """Return the hourly price of one of a run's machines (with accelerators), the same way
    on every platform: the catalog (or a Settings override) for the machine the run actually
    ran on, else the run's ``price_per_hour`` setting, else None.

    Args:
        run: the run.
        store: for overrides and the local rate.
        instance_type: the machine a trial ran on (default: the run's).
    """
    settings = dict(run.settings)
    machine = machine_settings(
        run.backend, {**settings, "instance_type": instance_type or run.instance_type}
    )
    price = machine_quote(run.backend, machine, store=store, settings=settings).usd_per_hour
    if price is None and settings.get("price_per_hour") not in (None, ""):
        try:
            price = _checked_rate(settings["price_per_hour"], "price_per_hour")
        except CloudTuneError:
            price = None
    return price


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
    total = finalize_costs_at(store, run_id, price, now)
    wall = _run_wall(run, trials, now)
    error = None
    if run.forecast:
        error = forecast_error(run.forecast, wall, total)
        store.update_run(run_id, forecast={**run.forecast, "error": error})
    return {"cost_usd": total, "wall_s": wall, "price_per_hour": price, "error": error}


def recost_local_runs(store: Store, usd_per_hour: float | None = None) -> list[int]:
    """Re-cost every ended local run at the local rate (default: the one stored in Settings).

    Each trial's cost becomes its own seconds x the rate and the run's its wall time x the
    rate, exactly as :func:`finalize_run_costs` costs a run as it ends; the run's settings
    record the rate it was costed at. Runs still going are left alone: they are costed at the
    then-current rate when they end.

    Returns:
        The ids of the runs re-costed.

    Raises:
        CloudTuneError: the rate is negative or not a number.
    """
    rate = _local_price(store, {} if usd_per_hour is None else {"rate_per_hour": usd_per_hour})
    done = []
    for run in store.list_runs():
        if run.backend != "local" or run.active:
            continue
        finalize_costs_at(store, run.id, rate.usd_per_hour)
        store.update_run(run.id, settings={**run.settings, "rate_per_hour": rate.usd_per_hour})
        done.append(run.id)
    return done


def finalize_costs_at(
    store: Store, run_id: int, price_per_hour: float | None, now: float | None = None
) -> float:
    """Set a run's trials' and its own cost at ``price_per_hour``; return the run's total."""
    run = store.get_run(run_id)
    for t in store.list_trials(run_id):
        cost = trial_cost(billable_seconds(t, now), price_per_hour)
        if cost is not None:
            store.upsert_trial(run_id, t.trial_key, cost_usd=round(cost, 6))
    total = live_cost(run, store.list_trials(run_id), price_per_hour, now)
    store.update_run(run_id, cost_usd=round(total, 6))
    return total


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
