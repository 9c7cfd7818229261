"""Altair chart builders: a DataFrame in, a chart out; aggregated so large studies stay fast.

Every builder caps what it hands to Vega (Altair refuses more than 5,000 rows by default):
distributions are drawn from pre-computed quantiles plus a seeded sample of points, histories
keep only the steps where the best value changes. Colours come from the Okabe–Ito palette,
which stays distinct for the common forms of colour blindness.

Example:
    >>> chart = metric_distribution(trials, "duration_s", group="platform")
    >>> spec = chart.to_dict()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FIXED_COLOURS: dict[str, str] = {
    # platforms (their labels) and strategies keep one colour in every chart of every study
    "Local": "#009E73",
    "AWS SageMaker": "#E69F00",
    "Vertex AI": "#0072B2",
    "Azure ML": "#CC79A7",
    "grid": "#CC79A7",
    "random": "#E69F00",
    "bayesian": "#D55E00",
    "hyperband": "#0072B2",
}
"""Colours of the groups people compare most, fixed so a platform or strategy is recognised."""
MAX_POINTS_PER_GROUP = 400
MAX_LINE_POINTS = 1500

METRIC_TITLES: dict[str, str] = {
    "duration_s": "Time per trial (s)",
    "billable_s": "Billable time (s)",
    "cost_usd": "Cost per trial (USD)",
    "objective": "Objective",
    "val_accuracy": "Validation accuracy",
    "accuracy": "Training accuracy",
    "val_loss": "Validation loss",
    "loss": "Training loss",
    "wall_h": "Time to completion per run (h)",
    "total_cost_usd": "Total cost (USD)",
    "best_objective": "Best objective",
    "elapsed_s": "Elapsed time (s)",
}


GROUP_TITLES: dict[str, str] = {
    "platform": "Platform",
    "backend": "Platform",
    "strategy": "Strategy",
    "instance_type": "Instance type",
    "run_id": "Run",
    "study_id": "Study",
}


def title_for(column: str) -> str:
    """Return a human title with units for a column name ("p_optimizer" -> "Optimizer")."""
    if column in METRIC_TITLES:
        return METRIC_TITLES[column]
    if column in GROUP_TITLES:
        return GROUP_TITLES[column]
    return column.removeprefix("p_").replace("_", " ").capitalize()


def group_domain(values: Any) -> list[str]:
    """The groups of a column as sorted text: the one order every chart of a view shares."""
    return sorted({str(v) for v in pd.Series(values).dropna()})


def colour_range(domain: Sequence[str]) -> list[str]:
    """One colour per group of ``domain``: the fixed colour of a known platform or strategy,
    else the next Okabe–Ito colour not taken, in the domain's order (so, with the same domain,
    the same group has the same colour in every chart)."""
    taken = {FIXED_COLOURS[g] for g in domain if g in FIXED_COLOURS}
    spare = [c for c in OKABE_ITO if c not in taken] or OKABE_ITO
    out, i = [], 0
    for g in domain:
        if g in FIXED_COLOURS:
            out.append(FIXED_COLOURS[g])
        else:
            out.append(spare[i % len(spare)])
            i += 1
    return out


def _tooltips(*fields: str) -> list[alt.Tooltip]:
    """Tooltip channels for plain field shorthands.

    Channels are always passed as objects, never as strings: Altair turns a string into its
    channel class by hashing the schema of every class it has (about 10 ms a string), which
    made the Compare page's charts take a third of a second to build.
    """
    return [alt.Tooltip(f) for f in fields]


def _color(group: str, domain: Sequence[str]) -> alt.Color:
    return alt.Color(
        f"{group}:N",
        title=title_for(group),
        scale=alt.Scale(domain=list(domain), range=colour_range(domain)),
    )


def _domain(df: pd.DataFrame, group: str, given: Sequence[str] | None = None) -> list[str]:
    """The given domain (extended by any group it lacks), else the data's sorted groups."""
    mine = group_domain(df[group])
    if given is None:
        return mine
    return [*given, *[g for g in mine if g not in given]]


def _finite(df: pd.DataFrame, column: str) -> pd.DataFrame:
    values = pd.to_numeric(df[column], errors="coerce")
    return df.assign(**{column: values})[np.isfinite(values.to_numpy(dtype=float))]


def sample_per_group(df: pd.DataFrame, group: str, n: int, seed: int = 0) -> pd.DataFrame:
    """Return at most ``n`` rows of each group (seeded), for point layers."""
    if len(df) <= n:
        return df
    parts = [
        part if len(part) <= n else part.sample(n, random_state=seed)
        for _, part in df.groupby(group, sort=False, observed=True)
    ]
    return pd.concat(parts) if parts else df.iloc[0:0]


def empty_chart(message: str) -> alt.Chart:
    """Return a small chart that says why there is nothing to draw."""
    return (
        alt.Chart(pd.DataFrame({"text": [message]}))
        .mark_text(size=14, color="#555")
        .encode(text=alt.Text("text:N"))
        .properties(height=80)
    )


def metric_distribution(
    df: pd.DataFrame,
    metric: str,
    group: str = "platform",
    *,
    title: str | None = None,
    domain: Sequence[str] | None = None,
) -> alt.LayerChart | alt.Chart:
    """Per-trial distribution of ``metric`` per group: a box from quantiles plus sampled points.

    Args:
        df: the per-trial table.
        metric: the numeric column to draw.
        group: the grouping column.
        title: the chart's title (default from the metric).
        domain: every group of the view, in order (keeps colours fixed across charts).

    Returns:
        An Altair chart whose data has at most a few hundred rows per group.
    """
    data = _finite(df, metric)
    if data.empty:
        return empty_chart(f"No finished trials with {title_for(metric).lower()} yet.")
    data = data.assign(**{group: data[group].astype(str)})
    domain = _domain(data, group, domain)
    q = data.groupby(group, observed=True)[metric].quantile([0.0, 0.25, 0.5, 0.75, 1.0])
    stats = q.unstack().reset_index()
    stats.columns = [group, "min", "q1", "median", "q3", "max"]
    y = alt.Y(f"{group}:N", title=None, sort=domain)
    color = _color(group, domain)
    whisker = (
        alt.Chart(stats).mark_rule().encode(x=alt.X("min:Q"), x2=alt.X2("max:Q"), y=y, color=color)
    )
    box = (
        alt.Chart(stats)
        .mark_bar(size=18, opacity=0.35)
        .encode(
            x=alt.X("q1:Q", title=title_for(metric), scale=alt.Scale(zero=False)),
            x2=alt.X2("q3:Q"),
            y=y,
            color=color,
            tooltip=_tooltips(group, "min", "q1", "median", "q3", "max"),
        )
    )
    median = (
        alt.Chart(stats)
        .mark_tick(size=22, thickness=2, color="black")
        .encode(x=alt.X("median:Q"), y=y)
    )
    sampled = sample_per_group(data[[group, metric]], group, MAX_POINTS_PER_GROUP)
    jitter = np.random.default_rng(0).normal(0.0, 4.0, len(sampled)).clip(-12, 12)
    points = (
        alt.Chart(sampled.assign(jitter=jitter))
        .mark_circle(size=28, opacity=0.6)
        .encode(
            x=alt.X(f"{metric}:Q"),
            y=y,
            yOffset=alt.YOffset("jitter:Q"),
            color=color,
            tooltip=[alt.Tooltip(group), alt.Tooltip(f"{metric}:Q", format=".4g")],
        )
    )
    return (whisker + box + median + points).properties(
        title=title or title_for(metric), height=alt.Step(46)
    )


def run_totals_bar(
    totals: pd.DataFrame,
    value: str,
    group: str = "platform",
    *,
    reference: pd.DataFrame | None = None,
    domain: Sequence[str] | None = None,
) -> alt.LayerChart | alt.Chart:
    """Bars of a run-level total per group, with an optional labelled reference overlay.

    Args:
        totals: a row per group (or per run) with ``value``.
        value: the column to draw (wall_h, total_cost_usd, best_objective...).
        group: the grouping column.
        reference: rows with ``group``, ``value`` and ``source`` (e.g. the published study's
            figures), drawn as hollow diamonds and labelled in the tooltip, never as bars.
        domain: every group of the view, in order (keeps colours fixed across charts).
    """
    data = _finite(totals, value)
    if data.empty:
        return empty_chart(f"No {title_for(value).lower()} yet.")
    data = data.assign(**{group: data[group].astype(str)})
    domain = _domain(data, group, domain)
    if reference is not None and not reference.empty:
        domain += [g for g in _domain(reference, group) if g not in domain]
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=title_for(value)),
            y=alt.Y(f"{group}:N", title=None, sort=domain),
            color=_color(group, domain),
            tooltip=[alt.Tooltip(group), alt.Tooltip(f"{value}:Q", format=".4g")],
        )
    )
    if reference is None or reference.empty or value not in reference:
        return bars.properties(height=alt.Step(34))
    ref = reference.assign(**{group: reference[group].astype(str)})
    marks = (
        alt.Chart(ref)
        .mark_point(shape="diamond", size=140, filled=False, strokeWidth=2, color="black")
        .encode(
            x=alt.X(f"{value}:Q"),
            y=alt.Y(f"{group}:N", sort=domain),
            tooltip=_tooltips(group, "source:N") + [alt.Tooltip(f"{value}:Q", format=".4g")],
        )
    )
    return (bars + marks).properties(height=alt.Step(34))


def best_so_far(
    df: pd.DataFrame, x: str, value: str = "objective", group: str = "platform", goal: str = "max"
) -> pd.DataFrame:
    """Return the running best of ``value`` against ``x`` per group, keeping only its steps."""
    data = _finite(_finite(df, value), x).sort_values([group, x])
    if data.empty:
        return pd.DataFrame(columns=[group, x, "best"])
    grouped = data.groupby(group, observed=True)[value]
    best = grouped.cummax() if goal == "max" else grouped.cummin()
    out = data[[group, x]].assign(best=best.to_numpy())
    changed = out["best"].ne(out.groupby(group, observed=True)["best"].shift())
    last = out.groupby(group, observed=True).tail(1).index
    out = out[changed | out.index.isin(last)]
    if len(out) > MAX_LINE_POINTS:
        out = out.groupby(group, observed=True).tail(
            MAX_LINE_POINTS // max(1, out[group].nunique())
        )
    return out.reset_index(drop=True)


def optimisation_history(
    df: pd.DataFrame,
    x: str = "trial",
    value: str = "objective",
    group: str = "platform",
    goal: str = "max",
    *,
    x_title: str | None = None,
    domain: Sequence[str] | None = None,
) -> alt.Chart:
    """Best value so far against ``x`` (trial number, elapsed seconds or dollars) per group."""
    steps = best_so_far(df, x, value, group, goal)
    if steps.empty:
        return empty_chart("No finished trials yet.")
    steps = steps.assign(**{group: steps[group].astype(str)})
    domain = _domain(steps, group, domain)
    return (
        alt.Chart(steps)
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title or title_for(x)),
            y=alt.Y(
                "best:Q",
                title=f"Best {title_for(value).lower()} so far",
                scale=alt.Scale(zero=False),
            ),
            color=_color(group, domain),
            tooltip=[
                alt.Tooltip(group),
                alt.Tooltip(f"{x}:Q", format=".4g"),
                alt.Tooltip("best:Q", format=".4f"),
            ],
        )
        .properties(height=260)
    )


def scatter(
    df: pd.DataFrame,
    x: str,
    y: str = "objective",
    group: str = "platform",
    *,
    domain: Sequence[str] | None = None,
) -> alt.Chart:
    """Per-trial ``y`` against ``x`` (e.g. accuracy against cost), sampled per group."""
    data = _finite(_finite(df, x), y)
    if data.empty:
        return empty_chart("No finished trials yet.")
    data = data.assign(**{group: data[group].astype(str)})
    domain = _domain(data, group, domain)
    data = sample_per_group(data[[group, x, y]], group, MAX_POINTS_PER_GROUP)
    return (
        alt.Chart(data)
        .mark_circle(size=50, opacity=0.7)
        .encode(
            x=alt.X(f"{x}:Q", title=title_for(x)),
            y=alt.Y(f"{y}:Q", title=title_for(y), scale=alt.Scale(zero=False)),
            color=_color(group, domain),
            tooltip=[
                alt.Tooltip(group),
                alt.Tooltip(f"{x}:Q", format=".4g"),
                alt.Tooltip(f"{y}:Q", format=".4f"),
            ],
        )
        .properties(height=280)
    )


def parallel_coordinates(
    df: pd.DataFrame, params: Sequence[str], value: str = "objective", *, max_rows: int = 400
) -> alt.Chart:
    """Parallel coordinates of the parameters (each scaled to 0–1), coloured by ``value``."""
    cols = [p for p in params if p in df.columns]
    data = _finite(df, value)
    if data.empty or not cols:
        return empty_chart("No finished trials with parameters yet.")
    if len(data) > max_rows:
        data = data.sample(max_rows, random_state=0)
    data = data.reset_index(drop=True).assign(row=lambda d: d.index)
    long_parts = []
    for col in cols:
        raw = data[col].map(
            lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else v
        )
        numeric = pd.to_numeric(raw, errors="coerce")
        if numeric.notna().all():
            lo, hi = float(numeric.min()), float(numeric.max())
            scaled = (numeric - lo) / (hi - lo) if hi > lo else numeric * 0 + 0.5
        else:
            text = raw.map(str)  # runs without this parameter show "–"
            cats = {v: i for i, v in enumerate(sorted(text.unique()))}
            scaled = text.map(cats) / max(1, len(cats) - 1)
        long_parts.append(
            pd.DataFrame(
                {
                    "row": data["row"],
                    "parameter": title_for(col),
                    "scaled": scaled.astype(float),
                    "value": raw.map(str),
                    value: data[value],
                }
            )
        )
    long = pd.concat(long_parts, ignore_index=True)
    return (
        alt.Chart(long)
        .mark_line(opacity=0.5)
        .encode(
            x=alt.X("parameter:N", title=None, sort=[title_for(c) for c in cols]),
            y=alt.Y("scaled:Q", title="Scaled value (0 = min, 1 = max)"),
            detail=alt.Detail("row:N"),
            color=alt.Color(
                f"{value}:Q", title=title_for(value), scale=alt.Scale(scheme="viridis")
            ),
            tooltip=[
                *_tooltips("parameter:N", "value:N"),
                alt.Tooltip(f"{value}:Q", format=".4f"),
            ],
        )
        .properties(height=300)
    )


def learning_curves(
    epochs: pd.DataFrame, metric: str = "val_accuracy", *, max_trials: int = 30
) -> alt.Chart:
    """Per-epoch ``metric`` of each trial (the latest ``max_trials`` trials); epochs count from 1."""
    if epochs.empty or metric not in epochs:
        return empty_chart("No finished epochs yet.")
    data = _finite(epochs, metric)
    keep = sorted(data["trial"].dropna().unique())[-max_trials:]
    data = data[data["trial"].isin(keep)]
    data = data.assign(trial=data["trial"].astype(int))
    return (
        alt.Chart(data[["trial", "epoch", metric]])
        .mark_line(point=True, opacity=0.8)
        .encode(
            x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{metric}:Q", title=title_for(metric), scale=alt.Scale(zero=False)),
            color=alt.Color("trial:N", title="Trial", scale=alt.Scale(range=OKABE_ITO)),
            tooltip=[*_tooltips("trial:N", "epoch:Q"), alt.Tooltip(f"{metric}:Q", format=".4f")],
        )
        .properties(height=260)
    )


def chart_png(chart: Any, scale: float = 2.0) -> bytes:
    """Render a chart to PNG bytes offline (vl-convert)."""
    import vl_convert as vlc

    return bytes(vlc.vegalite_to_png(chart.to_json(), scale=scale))


def chart_svg(chart: Any) -> str:
    """Render a chart to SVG text offline (vl-convert)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(chart.to_json()))
