"""Launch: dataset, strategy, budget and objective; platforms with readiness, forecast, preview."""

import json

import pandas as pd
import streamlit as st

from app_pages._shared import friendly, get_store
from core.analysis.selection import default_study_name, warmup_warning
from core.analysis.views import format_duration
from core.backends.base import BACKENDS, get_backend
from core.backends.platforms import early_stopping_note, instance_key, load_settings
from core.errors import BackendNotReady, CloudTuneError, SpecError
from core.runs import (
    CLOUD_CHECK_S,
    assess,
    forecast_for,
    needs_timing,
    start_run,
    time_this_machine,
)
from core.spec import (
    DATASET_NAMES,
    EARLY_STOPPING,
    METRICS,
    STRATEGIES,
    parse_spec,
    spec_problems,
)
from core.spec.design import MAX_CONFIGURATIONS, same_configurations
from core.spec.drafts import load_draft, save_draft


def choose(
    label: str,
    options: tuple[str, ...],
    current: object,
    key: str,
    hint: str,
    fallback: int = 0,
    disabled: bool = False,
) -> str:
    """A selectbox on ``current`` (``options[fallback]`` when it is not one of them)."""
    index = options.index(current) if current in options else fallback  # type: ignore[arg-type]
    return str(st.selectbox(label, options, index=index, key=key, help=hint, disabled=disabled))


DESIGN_NOTE = (
    "Not used while 'Same configurations on every platform' is on: each platform then runs a "
    "grid over the N configurations, one trial each."
)


store = get_store()
st.title("Launch")
draft = load_draft(store)
st.caption(
    f"Study **{draft.get('name') or '(unnamed)'}**: {len(draft.get('space') or [])} parameters. "
    "Edit them on Search space."
)

left, right = st.columns(2, gap="large")

with left:
    st.subheader("Data")
    dataset = dict(draft.get("dataset") or {"name": "digits"})
    infos = {}
    with friendly("Looking for datasets"):
        from core.training.data import available_datasets

        infos = {i.name: i for i in available_datasets(dataset.get("path"))}
    names = list(DATASET_NAMES)

    def label(name: str) -> str:
        info = infos.get(name)
        return f"{name} ({'available' if info and info.available else 'not found here'})"

    current = dataset.get("name", "digits")
    dataset["name"] = st.selectbox(
        "Dataset",
        names,
        index=names.index(current) if current in names else 0,
        format_func=label,
        key="ds_name",
    )
    info = infos.get(dataset["name"])
    if info is not None and not info.available:
        st.warning(info.how_to_get, icon=":material/info:")
    path = st.text_input(
        "File or folder (optional; required for custom)",
        value=dataset.get("path") or "",
        key="ds_path",
    )
    dataset["path"] = path or None
    c1, c2 = st.columns(2)
    subset = c1.number_input(
        "Training subset (examples, 0 = all)",
        min_value=0,
        value=int(dataset.get("subset") or 0),
        step=500,
        key="ds_subset",
    )
    dataset["subset"] = int(subset) or None
    dataset["validation_split"] = c2.slider(
        "Validation split",
        0.05,
        0.5,
        float(dataset.get("validation_split", 0.2)),
        0.05,
        key="ds_split",
    )
    draft["dataset"] = {k: v for k, v in dataset.items() if v is not None}
    with st.expander("Datasets on this machine"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Dataset": i.name,
                        "Available": i.available,
                        "Where": i.location or "",
                        "How to get it": i.how_to_get,
                    }
                    for i in infos.values()
                ]
            ),
            hide_index=True,
        )

    st.subheader("Search")
    design_on = bool(st.session_state.get("launch_same_configs", False))
    draft["strategy"] = choose(
        "Strategy",
        STRATEGIES,
        draft.get("strategy", "bayesian"),
        "strategy",
        DESIGN_NOTE
        if design_on
        else "grid tries every point (needs steps on floats); hyperband trains many short "
        "trials and promotes the best.",
        fallback=2,
        disabled=design_on,
    )
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    same_configs = c1.toggle(
        "Same configurations on every platform",
        key="launch_same_configs",
        help="The fair benchmark: draw N configurations once from the space (seeded) and "
        "train exactly those, "
        "with the same seeds, on every chosen platform, each with its own grid tuner over "
        "the configuration's index. Compare then separates the platform effect from the "
        "configurations' (a blocked comparison). The strategy and the trial count are not used.",
    )
    n_configs = int(
        c2.number_input(
            "Configurations",
            min_value=2,
            max_value=MAX_CONFIGURATIONS,
            value=6,
            key="launch_n_configs",
            disabled=not same_configs,
        )
    )
    objective = dict(draft.get("objective") or {})
    c1, c2 = st.columns(2)
    metrics = list(METRICS)
    metric = objective.get("metric", "val_accuracy")
    objective["metric"] = c1.selectbox(
        "Objective metric",
        metrics,
        index=metrics.index(metric) if metric in metrics else 0,
        key="obj_metric",
    )
    goals = ["max", "min"]
    objective["goal"] = c2.selectbox(
        "Goal",
        goals,
        index=goals.index(objective.get("goal", METRICS[objective["metric"]]))
        if objective.get("goal") in goals
        else 0,
        key="obj_goal",
    )
    draft["objective"] = objective

with right:
    st.subheader("Budget")
    budget = dict(draft.get("budget") or {})
    c1, c2, c3 = st.columns(3)
    budget["max_trials"] = c1.number_input(
        "Trials",
        min_value=1,
        value=int(budget.get("max_trials", 10)),
        key="b_trials",
        disabled=design_on,
        help=DESIGN_NOTE if design_on else None,
    )
    budget["parallel_trials"] = c2.number_input(
        "In parallel", min_value=1, value=int(budget.get("parallel_trials", 1)), key="b_par"
    )
    budget["epochs"] = c3.number_input(
        "Epochs per trial", min_value=1, value=int(budget.get("epochs", 2)), key="b_epochs"
    )
    c1, c2, c3 = st.columns(3)
    minutes = c1.number_input(
        "Time cap (minutes, 0 = none)",
        min_value=0.0,
        value=float(budget.get("max_minutes") or 0),
        key="b_minutes",
    )
    dollars = c2.number_input(
        "Cost cap (USD, 0 = none)",
        min_value=0.0,
        value=float(budget.get("max_cost_usd") or 0),
        key="b_cost",
    )
    draft["seed"] = int(c3.number_input("Seed", value=int(draft.get("seed", 42)), key="seed"))
    budget["max_minutes"] = minutes or None
    budget["max_cost_usd"] = dollars or None
    budget["early_stopping"] = choose(
        "Early stopping",
        EARLY_STOPPING,
        str(budget.get("early_stopping") or "none"),
        "b_early",
        "median: stop a trial whose best so far is worse than the median of the completed "
        "trials at the same epoch; each platform's own rule is said below.",
    )
    if budget["early_stopping"] == "none":
        budget["early_stopping"] = None
    draft["budget"] = {k: v for k, v in budget.items() if v is not None}

if draft != load_draft(store):
    save_draft(store, draft)

problems = spec_problems(draft)
spec = None
if problems:
    for p in problems:
        st.error(p.message, icon=":material/error:")
else:
    spec = parse_spec(draft)
    if same_configs:
        try:
            spec = same_configurations(spec, n_configs)
            st.caption(
                f":material/info: Every chosen platform trains the same {n_configs} configurations (grid "
                f"over config_index, {n_configs} trials, seeds {spec.seed} to "
                f"{spec.seed + n_configs - 1}); the exact requests below show it."
            )
        except SpecError as err:
            st.error(str(err), icon=":material/error:")
            spec = None
    warmup = warmup_warning(spec.to_dict()) if spec is not None else None
    if warmup:
        st.warning(warmup, icon=":material/casino:")

st.subheader("Platforms")
labels = {name: label for name, label in BACKENDS.items()}
chosen = st.pills(
    "Run on",
    list(labels),
    format_func=lambda n: labels[n],
    selection_mode="multi",
    default=["local"],
    key="platforms",
)
ready: dict[str, dict] = {}
if chosen:
    cols = st.columns(len(chosen))
for col, name in zip(cols if chosen else [], chosen or [], strict=False):
    with col, st.container(border=True):
        st.markdown(f"**{labels[name]}**")
        settings = load_settings(store, name)
        key = instance_key(name)
        if key:
            try:
                from core.costs.pricing import instance_types

                options = instance_types(name) or [settings.get(key, "")]
            except Exception:  # noqa: BLE001 - the catalog is optional here
                options = [settings.get(key, "")]
            current = settings.get(key)
            settings[key] = st.selectbox(
                "Instance type",
                options,
                index=options.index(current) if current in options else 0,
                key=f"inst_{name}",
            )
        with friendly(f"Checking {labels[name]}"):
            backend = get_backend(name, store)
            found = assess(backend, spec, settings, max_age_s=CLOUD_CHECK_S)
            missing = found.problems
            if missing:
                st.warning(
                    "Not ready:\n" + "\n".join(f"- {m}" for m in missing), icon=":material/warning:"
                )
                st.page_link(
                    "app_pages/settings.py", label="Open Settings", icon=":material/settings:"
                )
            else:
                st.success("Ready", icon=":material/check_circle:")
                ready[name] = settings
            for unchecked in found.notes:  # what the cloud would not let CloudTune check
                st.caption(unchecked)
            if spec is not None:
                forecast = forecast_for(backend, spec, settings)
                st.metric(
                    "Expected time",
                    format_duration(forecast.expected_wall_s),
                    help="\n".join(forecast.basis),
                )
                if needs_timing(backend, forecast):
                    st.caption(
                        "Not timed on this machine yet for this dataset. Timing a few training "
                        "steps takes 10–20 s; it is kept for later forecasts."
                    )
                    if st.button("Time this machine", key=f"time_{name}", icon=":material/timer:"):
                        with st.spinner("Timing a few training steps…"):
                            time_this_machine(store, spec)
                        st.rerun()
                cost = forecast.expected_cost_usd
                st.metric("Expected cost", "–" if cost is None else f"${cost:,.2f}")
                if forecast.worst_cost_usd is not None:
                    st.caption(
                        f"Worst case from the caps: ${forecast.worst_cost_usd:,.2f}, "
                        f"{format_duration(forecast.worst_wall_s)}"
                    )
                note = early_stopping_note(name, spec, settings)
                if note:
                    st.caption(note)
                with st.expander("How this forecast was made"):
                    for line in forecast.basis:
                        st.write(line)
                preview = getattr(backend, "preview", None)
                for note in getattr(backend, "image_notes", lambda _s: [])(settings):
                    st.caption(note)
                if preview is not None:
                    with st.expander("Exact request"):
                        try:
                            text = preview(spec, settings)
                            st.code(text, language="yaml" if name == "azure" else "json")
                        except CloudTuneError as err:
                            st.warning(str(err))

st.subheader("Study")
studies = {s.id: s.name for s in store.list_studies()}
c1, c2 = st.columns(2)
target = c1.selectbox(
    "Launch into",
    [0, *studies],
    format_func=lambda i: f"Add to study {i}: {studies[i]}" if i else "A new study",
    key="launch_study",
    help="Add the runs to an existing study to compare them with its runs, or start a new one.",
)
fresh_name = default_study_name(str(draft.get("name") or "study"), studies.values())
study_name = fresh_name
if not target:
    study_name = c2.text_input("New study's name", value=fresh_name, key="launch_study_name")
    if study_name.strip() in studies.values():
        c2.caption("A study already has this name; the new one gets its own id all the same.")

launch_ok = spec is not None and bool(chosen) and all(n in ready for n in chosen or [])
if st.button("Launch", type="primary", icon=":material/rocket_launch:", disabled=not launch_ok):
    assert spec is not None
    study_id = int(target) or store.create_study(
        {**spec.to_dict(), "name": study_name.strip() or fresh_name}
    )
    started = []
    for name in chosen or []:
        try:
            run_id = start_run(
                store,
                spec,
                name,
                settings=ready[name],
                study_id=study_id,
                instance_type=ready[name].get(instance_key(name)) or None,
            )
            started.append(run_id)
        except (BackendNotReady, SpecError, CloudTuneError) as err:
            st.error(f"{labels[name]}: {err}")
    if started:
        st.session_state.pop("launch_study_name", None)  # the next new study gets a new name
        st.session_state["compare_study"] = study_id
        st.session_state["monitor_runs"] = started
        st.session_state["launched"] = json.dumps(started)
        st.switch_page("app_pages/monitor.py")
elif not launch_ok and spec is not None and chosen:
    st.caption("Launch is enabled when every chosen platform is ready.")
