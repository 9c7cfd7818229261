"""Present: a study's findings one per screen, in large type, for a meeting room's projector."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import streamlit as st

from app_pages._shared import (
    altair_chart,
    friendly,
    get_store,
    pick_group,
    pick_runs,
    show_details,
)
from core.analysis.charts import chart_png, chart_svg
from core.analysis.report import StudyReport, load_report, render_html, report_file_name
from core.analysis.report.slides import Slide, slides

SLIDE_KEY = "present_slide"
RUNS_KEY = "present_runs"
GROUP_KEY = "present_group"
REFERENCE_KEY = "present_reference"

st.html(
    """<style>
.st-key-present h1 { font-size: 3rem !important; line-height: 1.15; }
.st-key-present-finding p { font-size: 2rem !important; line-height: 1.35; font-weight: 500; }
.st-key-present p, .st-key-present li { font-size: 1.35rem; }
.st-key-present [data-testid="stMetricValue"],
.st-key-present [data-testid="stMetricValue"] * { font-size: 2.2rem !important; }
.st-key-present [data-testid="stMetricLabel"] p { font-size: 1.3rem; }
.st-key-present table { font-size: 1.3rem; }
.st-key-present-counter p { font-size: 1.3rem; text-align: center; margin: 0; }
</style>"""
)


def _md(text: str) -> str:
    """Escape Markdown (and $, which would start LaTeX) so text shows as written."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~$<>])", r"\\\1", text)


def _go(step: int, total: int) -> None:
    st.session_state[SLIDE_KEY] = min(total - 1, max(0, st.session_state.get(SLIDE_KEY, 0) + step))


def _stamp(run_ids: tuple[int, ...]) -> tuple[Any, ...]:
    """What changes when the runs' results change (so the cached report is refreshed)."""
    store = get_store()
    runs = tuple((r.id, r.status, r.ended_at, r.cost_usd) for r in map(store.get_run, run_ids))
    return runs + tuple(store.trials_stamp(run_ids))


@st.cache_data(show_spinner="Reading the runs…", ttl=120, max_entries=8)
def _report(
    url: str, run_ids: tuple[int, ...], group: str, reference: bool, stamp: tuple[Any, ...]
) -> StudyReport:
    del url, stamp  # parts of the cache key only
    return load_report(get_store(), run_ids=list(run_ids), group=group, include_reference=reference)


def _empty() -> None:
    st.title("Present")
    st.info(
        "Nothing to present yet. Define a study on **Search space**, start it on **Launch** "
        "(locally or in the cloud), or load finished trials with "
        "`python -m core import FILE.csv`; its time, cost, accuracy and statistics then "
        "appear here one finding per screen."
    )


def _pick(store: Any) -> None:
    """The run and group pickers and the reference switch: on the first screen only."""
    st.session_state.setdefault("present_ref_pick", st.session_state.get(REFERENCE_KEY, False))
    for widget, kept in (("present_runs_pick", RUNS_KEY), ("present_group_pick", GROUP_KEY)):
        if widget not in st.session_state and st.session_state.get(kept):  # back on screen 1
            st.session_state[widget] = st.session_state[kept]
    left, middle, right = st.columns([4, 2, 2], vertical_alignment="bottom")
    st.session_state[RUNS_KEY] = pick_runs(store, "present_runs_pick", container=left)
    if st.session_state[RUNS_KEY]:
        st.session_state[GROUP_KEY] = pick_group(
            store, st.session_state[RUNS_KEY], "present_group_pick", container=middle
        )
    st.session_state[REFERENCE_KEY] = right.toggle(
        "Published figures",
        key="present_ref_pick",
        help="Add the published study's figures, labelled as a reference, never as measurements.",
    )


def _nav(index: int, total: int, title: str) -> None:
    prev, counter, nxt = st.columns([2, 3, 2], vertical_alignment="center")
    prev.button(
        "Previous",
        icon=":material/arrow_back:",
        on_click=_go,
        args=(-1, total),
        disabled=index == 0,
        shortcut="Left",
        width="stretch",
    )
    with counter.container(key="present-counter"):
        st.markdown(_md(f"{index + 1} / {total} · {title}"))
    nxt.button(
        "Next",
        icon=":material/arrow_forward:",
        on_click=_go,
        args=(1, total),
        disabled=index >= total - 1,
        shortcut="Right",
        width="stretch",
        type="primary",
    )


# the slide chart's downloads: label, renderer, file extension, MIME type, icon (a comment:
# Streamlit's magic would show a bare string on the page)
_FORMATS: tuple[tuple[str, Callable[[Any], bytes | str], str, str, str], ...] = (
    ("PNG", chart_png, "png", "image/png", ":material/image:"),
    ("SVG", chart_svg, "svg", "image/svg+xml", ":material/draw:"),
)


def _downloads(slide: Slide, stem: str) -> None:
    chart = slide.chart
    columns = st.columns([1, 1, 4])
    for column, (label, render, ext, mime, icon) in zip(columns, _FORMATS, strict=False):
        column.download_button(
            label,
            data=partial(render, chart),
            file_name=f"{stem}-{slide.key}.{ext}",
            mime=mime,
            icon=icon,
            key=f"{ext}-{slide.key}",
            on_click="ignore",
        )


def _show(slide: Slide, stem: str) -> None:
    """One slide: title, the finding, big numbers, the chart or table, and bullets."""
    st.title(_md(slide.title), anchor=False)
    with st.container(key="present-finding"):
        st.markdown(_md(slide.finding))
    if slide.figures:
        per_row = min(4, len(slide.figures))
        for start in range(0, len(slide.figures), per_row):
            cols = st.columns(per_row)
            for col, (label, value) in zip(cols, slide.figures[start : start + 4], strict=False):
                col.metric(label, value)
    if slide.chart is not None:
        altair_chart(slide.chart)
        _downloads(slide, stem)
    if slide.table is not None and not slide.table.empty:
        st.table(slide.table, hide_index=True)
    for bullet in slide.bullets:
        st.markdown("- " + _md(bullet))
    if slide.details:
        with st.expander("Descriptives, assumption checks and post-hoc comparisons"):
            show_details(slide.details)
    if slide.reference:
        with st.container(border=True):
            st.caption(_md(slide.reference))


store = get_store()
if not store.list_studies():
    _empty()
    st.stop()

index = int(st.session_state.get(SLIDE_KEY, 0))
with st.container(key="present"), friendly("Presenting the runs"):
    if index == 0 or not st.session_state.get(RUNS_KEY):
        _pick(store)
    run_ids = tuple(sorted(st.session_state.get(RUNS_KEY) or []))
    if not run_ids:
        st.title("Present")
        st.info(
            "Pick the runs to present (only runs with trials are listed; watch running ones on "
            "Monitor)."
        )
        st.stop()
    group = str(st.session_state.get(GROUP_KEY) or "platform")
    reference = bool(st.session_state.get(REFERENCE_KEY, False))
    report = _report(store.url, run_ids, group, reference, _stamp(run_ids))
    deck = slides(report)
    index = min(index, len(deck) - 1)
    _nav(index, len(deck), deck[index].title)
    _show(deck[index], report_file_name(report.title, report.study.id)[:-5])
    if index == 0:
        st.download_button(
            "Download the full report (HTML)",
            data=lambda: render_html(report),
            file_name=report_file_name(report.title, report.study.id),
            mime="text/html",
            icon=":material/description:",
            on_click="ignore",
        )
