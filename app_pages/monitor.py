"""Monitor: live progress of runs, learning curves, trials; cancel and resume."""

import pandas as pd
import streamlit as st

from app_pages._shared import altair_chart, friendly, get_store
from core.analysis import charts
from core.analysis.views import format_duration, platform_label, run_progress
from core.runs import cancel_run, check_liveness, failure_alert, refresh_run, resume_run
from core.store import ACTIVE_STATUSES

store = get_store()
st.title("Monitor")

with friendly("Checking the runs' workers"):
    check_liveness(store)
runs = store.list_runs()
if not runs:
    st.info("No runs yet: launch one from the Launch page.")
    st.stop()

studies = {s.id: s.name for s in store.list_studies()}
options = {
    r.id: f"Run {r.id} · {platform_label(r.backend)} · {studies.get(r.study_id, r.study_id)}"
    for r in runs[:100]
}
default = [r for r in st.session_state.get("monitor_runs", []) if r in options]
if not default:
    default = [r.id for r in runs if r.status in ACTIVE_STATUSES][:6] or [runs[0].id]
selected = st.multiselect(
    "Runs", list(options), default=default, format_func=options.__getitem__, key="monitor_select"
)
st.session_state["monitor_runs"] = selected


def show_run(run_id: int) -> None:
    """Render one run's progress, curves and trials."""
    run = store.get_run(run_id)
    if run.status in ACTIVE_STATUSES:
        with friendly(f"Polling run {run_id}"):
            refresh_run(store, run_id)
            run = store.get_run(run_id)
    progress = run_progress(store, run)
    with st.container(border=True):
        head, buttons = st.columns([4, 1])
        head.markdown(
            f"#### Run {run.id} · {platform_label(run.backend)}"
            f"{' · ' + run.instance_type if run.instance_type else ''}"
        )
        status = run.status_detail or run.status
        alert = failure_alert(run)
        head.caption(
            f"Status: **{status}**" + (f" — {run.error}" if run.error and not alert else "")
        )
        if alert:
            st.error(alert, icon=":material/error:")
        if run.status in ACTIVE_STATUSES:
            if buttons.button("Cancel", key=f"cancel_{run.id}", icon=":material/stop_circle:"):
                with friendly("Cancel"):
                    cancel_run(store, run.id)
                    st.rerun()
        elif (
            run.status in ("failed", "cancelled", "stopped")
            and run.backend == "local"
            and buttons.button("Resume", key=f"resume_{run.id}", icon=":material/play_circle:")
        ):
            with friendly("Resume"):
                resume_run(store, run.id)
                st.rerun()
        st.progress(
            progress.fraction,
            text=f"Trials: {progress.done} completed, {progress.failed} failed, "
            f"of {progress.total}",
        )
        if progress.running_trial is not None and run.status in ACTIVE_STATUSES:
            st.progress(
                progress.epoch_fraction,
                text=f"Trial {progress.running_trial}: epoch {progress.epoch} of {progress.epochs}",
            )
        m1, m2, m3 = st.columns(3)
        m1.metric("Elapsed", format_duration(progress.elapsed_s))
        m2.metric(
            "Cost so far", "–" if progress.cost_so_far is None else f"${progress.cost_so_far:,.4f}"
        )
        m3.metric("Best so far", "–" if progress.best is None else f"{progress.best:.4f}")
        epochs = store.epochs_frame([run.id])
        metric = (run.spec.get("objective") or {}).get("metric", "val_accuracy")
        altair_chart(charts.learning_curves(epochs, metric))
        trials = store.trials_frame(run_ids=[run.id])
        if not trials.empty:
            cols = ["trial", "status", "diverged", "objective", "duration_s", "cost_usd"] + [
                c for c in trials.columns if c.startswith("p_") or c == "early_stopped"
            ]
            diverged = int(trials["diverged"].sum())
            if diverged:
                st.warning(
                    f"{diverged} of {len(trials)} trials diverged (loss not finite or "
                    "validation accuracy at chance): see the diverged column.",
                    icon=":material/trending_down:",
                )
            st.dataframe(
                trials[cols],
                hide_index=True,
                width="stretch",
                column_config={
                    "objective": st.column_config.NumberColumn(format="%.4f"),
                    "diverged": st.column_config.CheckboxColumn("diverged"),
                    "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
                    "cost_usd": st.column_config.NumberColumn("cost (USD)", format="%.4f"),
                },
            )
            failed = trials[trials["status"] == "failed"]
            if not failed.empty:
                with st.expander(f"{len(failed)} failed trial(s)"):
                    st.dataframe(
                        pd.DataFrame({"trial": failed["trial"], "error": failed["error"]}),
                        hide_index=True,
                    )


any_active = any(store.get_run(r).status in ACTIVE_STATUSES for r in selected)


@st.fragment(run_every=2 if any_active else None)
def live() -> None:
    """Re-render the selected runs every 2 s while any is active."""
    for run_id in selected:
        show_run(run_id)


live()
