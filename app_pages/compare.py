"""Compare: platforms (or strategies, instance types) side by side, with the statistics."""

import streamlit as st

from app_pages._shared import (
    CHART_TABS,
    chart_with_downloads,
    get_store,
    pick_group,
    pick_runs,
    show_details,
    vega_lite_spec,
)
from core.analysis.comparison import compare_view
from core.analysis.report.tables import detail_sections
from core.analysis.selection import selectable_runs
from core.analysis.views import PUBLISHED_STATS, export_csv, goal_of

store = get_store()
st.title("Compare")

if not store.list_studies():
    st.info("Nothing to compare yet: launch a study on one or more platforms first.")
    st.stop()
if not selectable_runs(store):
    st.info("No run has trials yet. Watch the runs on Monitor; they appear here as trials end.")
    st.stop()

c1, c2, c3, c4 = st.columns([4, 1.6, 0.8, 1.2], vertical_alignment="bottom")
picked = pick_runs(store, "cmp_runs", container=c1)
alpha = c3.number_input(
    "α", min_value=0.001, max_value=0.2, value=0.05, step=0.01, format="%.3f", key="cmp_alpha"
)
show_reference = c4.toggle(
    "Published figures",
    value=False,
    key="cmp_ref",
    help="Overlay the published study's figures as a labelled reference.",
)


@st.cache_resource(show_spinner="Reading trials and computing the statistics…", max_entries=8)
def _view(
    url: str, run_ids: tuple, stamp: tuple, group: str, alpha: float, reference: bool, goal: str
):  # noqa: ANN202 - a cached call into core; the stamp keys the cache
    del url, stamp
    view = compare_view(
        get_store(), list(run_ids), group, alpha=alpha, reference=reference, goal=goal
    )
    return view, {}  # the charts' specs, converted as their tab is first opened (_spec)


def _spec(view, specs: dict, name: str) -> dict:  # noqa: ANN001 - the cached pair of _view
    """A chart's Vega-Lite spec, converted once per view (the dict is cached with it)."""
    if name not in specs:
        specs[name] = vega_lite_spec(view.charts[name])
    return specs[name]


if not picked:
    st.info("Pick at least one run.")
    st.stop()
stamp = store.trials_stamp(picked)
if not stamp[0]:
    st.info("These runs have no trials yet. Watch them on Monitor.")
    st.stop()
group = pick_group(store, picked, "cmp_group", container=c2)
goal = goal_of(store.get_run(picked[0]))
if show_reference and group != "platform":
    st.caption("The published figures are per platform: group by platform to see them.")
view, specs = _view(
    store.url, tuple(sorted(picked)), stamp, group, float(alpha), bool(show_reference), goal
)
trials, totals = view.trials, view.totals
for warning in view.spec_diff.warnings:
    st.warning(warning, icon=":material/warning:")
if view.spec_diff.differs:
    st.markdown(
        "**What differs between these runs**\n"
        + "\n".join(f"- {line}" for line in view.spec_diff.lines).replace("$", "\\$")
    )
elif len(picked) > 1:
    st.caption("These runs share one spec: dataset, objective, strategy, space and budget.")
for note in view.notes:
    st.caption(f":material/info: {note}")

st.subheader("Side by side")
# lazy: only the open tab's charts are drawn (all eleven at once were most of the browser's
# work on a first visit and at every re-group; bench/bench_pages.py); the tab stays open
# through a re-group
tabs = st.tabs(list(CHART_TABS), key="cmp_charts", on_change="rerun")
for tab, rows in zip(tabs, CHART_TABS.values(), strict=True):
    if not tab.open:
        continue
    with tab:
        for row in rows:
            present = [name for name in row if name in view.charts]
            for col, name in zip(st.columns(len(present)) if present else [], present, strict=True):
                with col:
                    chart_with_downloads(view.charts[name], name, _spec(view, specs, name))
            if view.cost_note and len(present) < len(row):
                st.info(view.cost_note, icon=":material/payments:")
                st.page_link(
                    "app_pages/settings.py", label="Open Settings", icon=":material/settings:"
                )
            if row[0] == "time-to-completion" and show_reference and group == "platform":
                st.caption(
                    "◇ Published study (reference figures, not measured here; GCP AI Platform "
                    "is shown as Vertex AI, its successor)."
                )

st.subheader("Statistics")
stats_table = None
if view.stats_error:
    st.warning(view.stats_error)
elif view.comparison is not None:
    comparison = view.comparison
    stats_table = comparison.table()
    st.dataframe(stats_table, hide_index=True, width="stretch")
    for sentence in comparison.conclusions():
        st.markdown(f"- {sentence}")
    for warning in comparison.warnings:
        st.caption(f"⚠ {warning}")
    # lazy: its tables are built and drawn only while it is open (closed, they were a quarter
    # of the browser's work at every re-group; bench/bench_pages.py)
    details = st.expander(
        "Descriptives, assumption checks, post-hoc comparisons and effect sizes",
        key="cmp_details",
        on_change="rerun",
    )
    if details.open:
        with details:
            show_details(detail_sections(comparison, group, float(alpha)))
    if show_reference:
        st.caption("Published study's table (reference, not computed from these trials):")
        st.dataframe(PUBLISHED_STATS, hide_index=True)

if view.blocked:
    st.subheader("Same configurations on every run: the blocked comparison")
    st.caption(
        "Every run trained the same drawn configurations with the same seeds, so each "
        "configuration is a block: the tests below compare the groups on the same "
        "configurations and leave the configurations' own effect out."
    )
    for result in view.blocked.values():
        st.markdown(f"**{result.name}**")
        st.dataframe(result.table(), hide_index=True, width="stretch")
        for sentence in result.conclusions:
            st.markdown(f"- {sentence}")
        for warning in result.warnings:
            st.caption(f"⚠ {warning}")
        paired = st.expander(
            f"{result.name}: paired comparisons (Holm-adjusted)",
            key=f"cmp_paired_{result.name}",
            on_change="rerun",
        )
        if paired.open:
            with paired:
                st.dataframe(result.paired_table(), hide_index=True, width="stretch")

st.subheader("Export")
e1, e2, e3, e4 = st.columns(4)
e1.download_button(
    "Comparison table (CSV)",
    export_csv(totals),
    "comparison.csv",
    "text/csv",
    on_click="ignore",
)
e2.download_button(
    "Per-trial table (CSV)",
    lambda: export_csv(trials),
    "trials.csv",
    "text/csv",
    on_click="ignore",
)
if stats_table is not None:
    e3.download_button(
        "Statistics table (CSV)",
        export_csv(stats_table),
        "statistics.csv",
        "text/csv",
        on_click="ignore",
    )


def _report() -> bytes:
    from core.analysis.report import build_report

    return build_report(
        store, run_ids=picked, group=group, alpha=float(alpha), include_reference=show_reference
    ).encode("utf-8")


e4.download_button(
    "Meeting report (HTML)",
    _report,
    f"cloudtune-report-runs-{'-'.join(str(r) for r in sorted(picked))}.html",
    "text/html",
    on_click="ignore",
    type="primary",
)
