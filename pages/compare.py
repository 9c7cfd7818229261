"""Compare: platforms (or strategies, instance types) side by side, with the statistics."""

import streamlit as st

from core import charts
from core.views import (
    PUBLISHED_REFERENCE,
    PUBLISHED_STATS,
    compare_frame,
    group_columns,
    run_totals,
    with_progress_columns,
)
from pages._shared import chart_with_downloads, friendly, get_store

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
    format_func=names.get,
    key="cmp_study",
)
st.session_state["compare_study"] = study_id
runs = store.list_runs(study_id)
run_labels = {r.id: f"Run {r.id} · {r.backend} · {r.status}" for r in runs}
picked = c2.multiselect(
    "Runs",
    list(run_labels),
    default=list(run_labels),
    format_func=run_labels.get,
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

trials = compare_frame(store, run_ids=picked) if picked else compare_frame(store, run_ids=[])
if trials.empty:
    st.info("These runs have no trials yet. Watch them on Monitor.")
    st.stop()
trials = with_progress_columns(trials)
done = trials[trials["status"] == "completed"]
group = st.selectbox(
    "Group by",
    group_columns(trials),
    key="cmp_group",
    format_func=lambda c: c.removeprefix("p_").replace("_", " "),
)
reference = PUBLISHED_REFERENCE if show_reference and group == "platform" else None
if show_reference and group != "platform":
    st.caption("The published figures are per platform: group by platform to see them.")

st.subheader("Side by side")
totals = run_totals(store, trials, group)
t1, t2, t3 = st.columns(3)
with t1:
    chart_with_downloads(
        charts.run_totals_bar(totals, "wall_h", group, reference=reference), "time-to-completion"
    )
with t2:
    chart_with_downloads(
        charts.run_totals_bar(totals, "total_cost_usd", group, reference=reference), "total-cost"
    )
with t3:
    chart_with_downloads(
        charts.run_totals_bar(totals, "best_objective", group, reference=reference),
        "best-objective",
    )
if reference is not None:
    st.caption(
        "◇ Published study (reference figures, not measured here; GCP AI Platform is "
        "shown as Vertex AI, its successor)."
    )
d1, d2, d3 = st.columns(3)
with d1:
    chart_with_downloads(charts.metric_distribution(done, "duration_s", group), "trial-time")
with d2:
    chart_with_downloads(charts.metric_distribution(done, "cost_usd", group), "trial-cost")
with d3:
    chart_with_downloads(charts.metric_distribution(done, "objective", group), "trial-objective")

goal = "max"
if runs:
    goal = (runs[0].spec.get("objective") or {}).get("goal", "max")
h1, h2 = st.columns(2)
with h1:
    chart_with_downloads(
        charts.optimisation_history(
            done, "trial", "objective", group, goal, x_title="Trial number"
        ),
        "history",
    )
with h2:
    chart_with_downloads(charts.scatter(done, "cost_usd", "objective", group), "objective-vs-cost")
h3, h4 = st.columns(2)
with h3:
    chart_with_downloads(
        charts.optimisation_history(
            done, "elapsed_s", "objective", group, goal, x_title="Elapsed time (s)"
        ),
        "time-to-accuracy",
    )
with h4:
    chart_with_downloads(
        charts.optimisation_history(
            done, "spent_usd", "objective", group, goal, x_title="Money spent (USD)"
        ),
        "dollars-to-accuracy",
    )
params = [c for c in done.columns if c.startswith("p_")]
if params:
    chart_with_downloads(
        charts.parallel_coordinates(done, params, "objective"), "parallel-coordinates"
    )


@st.cache_data(show_spinner="Computing the statistics…", max_entries=16)
def _comparison(frame, by: str, level: float):  # noqa: ANN001, ANN202 - cached call into core
    from core.stats import compare

    return compare(frame, ["duration_s", "cost_usd", "objective"], group=by, alpha=level)


st.subheader("Statistics")
stats_table = None
with friendly("The statistics"):
    cols = ["run_id", "trial", group, "duration_s", "cost_usd", "objective"]
    comparison = _comparison(done[list(dict.fromkeys(cols))], group, float(alpha))
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
    "Per-trial table (CSV)", trials.to_csv(index=False), "trials.csv", "text/csv", on_click="ignore"
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
    from core.report import build_report

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
