"""Helpers the pages share: the cached store and a guard that turns errors into sentences."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.errors import CloudTuneError
from core.store import Store

if TYPE_CHECKING:
    import altair as alt


CHART_TABS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Totals": (("time-to-completion", "total-cost", "best-objective"),),
    "Per trial": (("trial-time", "trial-cost", "trial-objective"),),
    "Over time": (("history", "objective-vs-cost"), ("time-to-accuracy", "dollars-to-accuracy")),
    "Parameters": (("parallel-coordinates",),),
}
"""The side-by-side charts, a tab a theme and a row a line of columns: time, cost and the
objective side by side in the first two."""


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store(url)


def get_store() -> Store:
    """Return the store for $CLOUDTUNE_DB (or the default), opened once per server."""
    from core.store import default_url

    return _store(os.environ.get("CLOUDTUNE_DB") or default_url())


@contextmanager
def friendly(what: str) -> Iterator[None]:
    """Show a CloudTune error as a sentence (and any other error as one short line)."""
    try:
        yield
    except CloudTuneError as err:
        st.error(str(err))
    except Exception as err:  # noqa: BLE001 - no traceback ever reaches a page
        st.error(
            f"{what} failed: {err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        )


def vega_lite_spec(chart: alt.Chart | alt.LayerChart) -> dict[str, Any]:
    """The Vega-Lite spec (its datasets as Arrow) that ``st.altair_chart`` sends for ``chart``.

    Made once with the cached view a page shows and drawn with ``st.vega_lite_chart``, so a
    rerun does not convert the chart again: Altair's ``to_dict`` validates the whole spec
    against the Vega-Lite schema and Streamlit re-encodes every dataset, 10–40 ms a chart, which
    was a third of a Compare rerun. It skips that schema check (:class:`_Unvalidated`) and
    draws on a canvas (:data:`CANVAS`). The conversion is Streamlit's own (the function behind
    ``st.altair_chart``), so the element is the same; ``tests/app_pages`` checks it is.
    """
    from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec

    spec = dict(_convert_altair_to_vega_lite_spec(_Unvalidated(chart)))  # type: ignore[arg-type]
    spec["usermeta"] = {**spec.get("usermeta", {}), **CANVAS}
    return spec


CANVAS: dict[str, Any] = {"embedOptions": {"renderer": "canvas"}}
"""Vega draws the charts on a canvas rather than as SVG (Streamlit's own choice above 2,000
points a chart). As SVG, Compare's 11 charts over 1,000 trials were 7,600 DOM nodes that the
browser laid out and painted again at every re-group. The PNG and SVG downloads do not
depend on it (``core.analysis.charts.chart_png``, ``chart_svg``)."""


def altair_chart(chart: alt.Chart | alt.LayerChart) -> None:
    """``st.altair_chart`` at the page's width, drawn on a canvas (:data:`CANVAS`)."""
    st.altair_chart(chart.properties(usermeta=CANVAS), width="stretch")


class _Unvalidated:
    """A chart whose ``to_dict`` skips Altair's check of the spec against the Vega-Lite schema.

    The check walks the whole schema with jsonschema: 0.25 s of every Compare re-group (11
    charts), for specs that CloudTune's own code builds the same way every time. The tests
    draw the same charts through ``st.altair_chart``, which checks them, and compare the
    elements (``tests/app_pages/test_pages.py``).
    """

    def __init__(self, chart: alt.Chart | alt.LayerChart) -> None:
        self._chart = chart

    def to_dict(self) -> dict[str, Any]:
        return self._chart.to_dict(validate=False)


def chart_with_downloads(
    chart: alt.Chart | alt.LayerChart, name: str, spec: dict[str, Any] | None = None
) -> None:
    """Show an Altair chart with PNG and SVG download buttons (rendered on click, offline).

    ``spec``: the chart's :func:`vega_lite_spec`, when the page has it made already.
    """
    from core.analysis.charts import chart_png, chart_svg

    if spec is None:
        altair_chart(chart)
    else:
        st.vega_lite_chart(spec=spec, width="stretch")
    with st.popover("Download chart", icon=":material/download:"):
        st.download_button(
            "PNG image",
            lambda: chart_png(chart),
            f"{name}.png",
            "image/png",
            key=f"png_{name}",
            on_click="ignore",
        )
        st.download_button(
            "SVG image",
            lambda: chart_svg(chart),
            f"{name}.svg",
            "image/svg+xml",
            key=f"svg_{name}",
            on_click="ignore",
        )


def pick_runs(store: Store, key: str, *, container: Any = st) -> list[int]:
    """The run multiselect Compare and Present share: any runs with trials, from any study.

    Defaults to the runs of the study Home opened (``compare_study``), else of the newest study
    that has trials; picking another study on Home resets the choice.
    """
    from core.analysis.selection import default_run_ids, run_label, selectable_runs

    runs = selectable_runs(store)
    names = {s.id: s.name for s in store.list_studies()}
    labels = {r.id: run_label(r, names) for r in runs}
    wanted = st.session_state.get("compare_study")
    if key not in st.session_state or st.session_state.get(f"{key}_from") != wanted:
        studies = {r.study_id for r in runs}
        st.session_state[key] = default_run_ids(store, wanted if wanted in studies else None)
        st.session_state[f"{key}_from"] = wanted
    st.session_state[key] = [r for r in st.session_state[key] if r in labels]
    picked = container.multiselect(
        "Runs",
        list(labels),
        format_func=labels.__getitem__,
        key=key,
        help="Any runs with trials, from one study or several (default: the newest study).",
    )
    return [int(r) for r in picked]


def pick_group(store: Store, run_ids: list[int], key: str, *, container: Any = st) -> str:
    """The group-by select Compare and Present share: platform, strategy, instance type, run,
    study, or any parameter of the chosen runs."""
    from core.analysis.charts import title_for
    from core.analysis.views import group_columns

    columns = group_columns([store.get_run(r) for r in run_ids])
    if st.session_state.get(key) not in columns:
        st.session_state.pop(key, None)
    return str(container.selectbox("Group by", columns, key=key, format_func=title_for))


def show_details(sections: list[Any]) -> None:
    """The statistics' readable details (``core.analysis.report.tables.detail_sections``)."""
    for section in sections:
        if section.table is None:
            st.markdown(f"**{section.title}**")
        else:
            st.markdown(f"*{section.title}*")
        if section.text:
            st.caption(section.text)
        if section.table is not None and not section.table.empty:
            st.dataframe(section.table, hide_index=True, width="stretch")
