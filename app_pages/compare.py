"""Compare: platforms (or strategies, instance types) side by side, with the statistics."""

import streamlit as st

from app_pages._shared import chart_with_downloads, get_store
from core.analysis.views import PUBLISHED_STATS, compare_view, goal_of, group_columns

store = get_store()
st.title("Compare")

studies = store.list_studies()
if not studies:
    st.info("Nothing to compare yet: launch a study on one or more platforms first.")
    st.stop()

names = {s.id: f"{s.name} (study {s.id})" for s in studies}
default_study = st.session_state.get("compare_study", studies[0].id)
ids = list(names)
c1, c2, c3, c4 = st.columns([3, 2, 1, 1.3], vertical_alignment="bottom")
study_id = c1.selectbox(
    "Study",
    ids,
    index=ids.index(default_study) if default_study in ids else 0,
    format_func=names.__getitem__,
    key="cmp_study",
)
st.session_state["compare_study"] = study_id
runs = store.list_runs(study_id)
run_labels = {r.id: f"Run {r.id} · {r.backend}" for r in runs}
picked = c2.multiselect(
    "Runs",
    list(run_labels),
    default=list(run_labels),
    format_func=run_labels.__getitem__,
    key=f"cmp_runs_{study_id}",
)
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
    return compare_view(
        get_store(), list(run_ids), group, alpha=alpha, reference=reference, goal=goal
    )


if not picked:
    st.info("Pick at least one run.")
    st.stop()
stamp = store.trials_stamp(picked)
if not stamp[0]:
    st.info("These runs have no trials yet. Watch them on Monitor.")
    st.stop()
goal = goal_of(runs[0]) if runs else "max"
columns = group_columns(runs)
group = st.selectbox(
    "Group by",
    columns,
    key="cmp_group",
    format_func=lambda c: c.removeprefix("p_").replace("_", " "),
)
if show_reference and group != "platform":
    st.caption("The published figures are per platform: group by platform to see them.")
view = _view(
    store.url, tuple(sorted(picked)), stamp, group, float(alpha), bool(show_reference), goal
)
trials, totals = view.trials, view.totals

st.subheader("Side by side")
for row in (
    ("time-to-completion", "total-cost", "best-objective"),
    ("trial-time", "trial-cost", "trial-objective"),
    ("history", "objective-vs-cost"),
    ("time-to-accuracy", "dollars-to-accuracy"),
    ("parallel-coordinates",),
):
    present = [name for name in row if name in view.charts]
    for col, name in zip(st.columns(len(present)) if present else [], present, strict=True):
        with col:
            chart_with_downloads(view.charts[name], name)
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
    with st.expander("Descriptives, assumption checks, post-hoc comparisons and effect sizes"):
        st.markdown("**Descriptives** (95% confidence interval of the mean)")
        st.dataframe(comparison.descriptives(), hide_index=True, width="stretch")
        for key, m in comparison.metrics.items():
            st.markdown(f"**{m.info.name}** — {m.choice_reason}")
            if m.shapiro is not None and not m.shapiro.empty:
                st.dataframe(m.shapiro, hide_index=True)
            checks = []
            for name in ("anova", "welch", "kruskal", "levene", "brown_forsythe"):
                result = getattr(m, name, None)
                if result is not None:
                    checks.append(
                        {
                            "test": name,
                            **{
                                k: v
                                for k, v in vars(result).items()
                                if isinstance(v, int | float | str)
                            },
                        }
                    )
            if checks:
                st.dataframe(checks, hide_index=True)
            if m.posthoc is not None:
                st.caption(f"Post-hoc ({m.posthoc_name}) for {key}")
                st.dataframe(m.posthoc, hide_index=True)
    if show_reference:
        st.caption("Published study's table (reference, not computed from these trials):")
        st.dataframe(PUBLISHED_STATS, hide_index=True)

st.subheader("Export")
e1, e2, e3, e4 = st.columns(4)
e1.download_button(
    "Comparison table (CSV)",
    totals.to_csv(index=False),
    "comparison.csv",
    "text/csv",
    on_click="ignore",
)
e2.download_button(
    "Per-trial table (CSV)",
    lambda: trials.to_csv(index=False),
    "trials.csv",
    "text/csv",
    on_click="ignore",
)
if stats_table is not None:
    e3.download_button(
        "Statistics table (CSV)",
        stats_table.to_csv(index=False),
        "statistics.csv",
        "text/csv",
        on_click="ignore",
    )


def _report() -> bytes:
    from core.analysis.report import build_report

    return build_report(
        store, int(study_id), group=group, alpha=float(alpha), include_reference=show_reference
    ).encode("utf-8")


e4.download_button(
    "Meeting report (HTML)",
    _report,
    f"cloudtune-report-{study_id}.html",
    "text/html",
    on_click="ignore",
    type="primary",
)
