"""Search space: add, remove and edit parameters; presets; validation; size; sample; save/load."""

import pandas as pd
import streamlit as st

from app_pages._shared import get_store
from core.errors import SpecError
from core.spec import (
    KNOWN_PARAMS,
    PARAM_TYPES,
    SCALES,
    StudySpec,
    check_size,
    parse_spec,
    spec_problems,
)
from core.spec.drafts import (
    PRESET_NOTES,
    PRESETS,
    downloads,
    draft_from_upload,
    file_stem,
    load_draft,
    preset,
    save_draft,
)
from core.spec.edit import new_param, parse_values, points_label, range_advice, values_text

store = get_store()
st.title("Search space")
st.caption("What to tune and over which ranges. Changes are saved as you type.")

version = st.session_state.setdefault("space_v", 0)


def reload(data: dict) -> None:
    """Store a new draft and reset the widgets to show it."""
    save_draft(store, data)
    st.session_state["space_v"] = version + 1
    st.rerun()


draft = load_draft(store)

with st.expander("Presets, upload and download", expanded=False, icon=":material/folder_open:"):
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    choice = c1.selectbox("Preset", list(PRESETS), key="preset_choice")
    if c2.button("Load preset", width="stretch"):
        reload(preset(choice))
    if choice in PRESET_NOTES:
        st.caption(PRESET_NOTES[choice])
    upload = st.file_uploader("Load a spec (JSON or YAML)", type=["json", "yaml", "yml"])
    if upload is not None and st.session_state.get("uploaded_id") != upload.file_id:
        st.session_state["uploaded_id"] = upload.file_id
        st.session_state["upload_error"] = None
        try:
            check_size(upload.name, upload.size)  # refused before reading it
            reload(draft_from_upload(upload.getvalue(), upload.name))
        except SpecError as err:
            why = "\n".join(f"- {p}" for p in err.problems)
            message = f"{upload.name} was not loaded, so the draft is unchanged:\n\n{why}"
            st.session_state["upload_error"] = (upload.file_id, message)
    failed = st.session_state.get("upload_error")
    if upload is not None and failed and failed[0] == upload.file_id:
        st.error(failed[1], icon=":material/error:")

draft["name"] = st.text_input(
    "Study name",
    value=str(draft.get("name", "")),
    key=f"{version}-name",
    help="A short name, shown on every page and in reports.",
)

space = list(draft.get("space") or [])
st.subheader("Parameters")
new_space = []
slots = []
remove_index = None
for i, item in enumerate(space):
    key = f"{version}-{i}"
    name = str(item.get("name", ""))
    with st.container(border=True):
        cols = st.columns([2, 1.3, 1.2, 1.2, 1.1, 1.1, 0.5], vertical_alignment="bottom")
        names = list(KNOWN_PARAMS)
        name = cols[0].selectbox(
            "Parameter",
            names,
            index=names.index(name) if name in names else 0,
            key=f"{key}-name",
            help=KNOWN_PARAMS[name].description if name in KNOWN_PARAMS else None,
        )
        info = KNOWN_PARAMS[name]
        ptype = str(item.get("type") or ("choice" if "values" in item else "float"))
        ptype = cols[1].selectbox(
            "Type",
            PARAM_TYPES,
            index=PARAM_TYPES.index(ptype) if ptype in PARAM_TYPES else 0,
            key=f"{key}-type",
        )
        out: dict = {"name": name, "type": ptype}
        if ptype in ("float", "int"):
            integer = ptype == "int"
            cast = int if integer else float
            lo_default = item.get("min", info.lo if info.lo is not None else 0)
            hi_default = item.get("max", info.hi if info.hi is not None else 1)
            fmt = "%d" if integer else "%g"
            try:
                lo_value, hi_value = cast(lo_default), cast(hi_default)
            except (TypeError, ValueError):
                lo_value, hi_value = cast(0), cast(1)
            out["min"] = cols[2].number_input("Min", value=lo_value, format=fmt, key=f"{key}-min")
            out["max"] = cols[3].number_input("Max", value=hi_value, format=fmt, key=f"{key}-max")
            scale = str(item.get("scale", "linear"))
            out["scale"] = cols[4].selectbox(
                "Scale",
                SCALES,
                index=SCALES.index(scale) if scale in SCALES else 0,
                key=f"{key}-scale",
            )
            step_default = item.get("step")
            step = cols[5].number_input(
                "Step",
                value=None if step_default in (None, 1) and not integer else step_default,
                min_value=1 if integer else 0.0,
                format=fmt,
                key=f"{key}-step",
                placeholder="none",
                help="Leave empty for a continuous range.",
            )
            if step is not None and (integer or step > 0):
                out["step"] = step
        elif ptype == "choice":
            text = cols[2].text_input(
                "Values (comma-separated)",
                value=values_text(item.get("values", info.values or [info.default])),
                key=f"{key}-values",
                help=f"One of: {', '.join(info.values)}" if info.values else "e.g. 32, 64, 128",
            )
            out["values"] = parse_values(text)
        else:
            text = cols[2].text_input(
                "Value", value=values_text([item.get("value", info.default)]), key=f"{key}-value"
            )
            parsed = parse_values(text)
            out["value"] = parsed[0] if parsed else ""
        if cols[6].button("", icon=":material/delete:", key=f"{key}-remove", help=f"Remove {name}"):
            remove_index = i
        slots.append((i, name, st.container()))
        new_space.append(out)

if remove_index is not None:
    del new_space[remove_index]
    draft["space"] = new_space
    reload(draft)

used = {p.get("name") for p in new_space}
unused = [n for n in KNOWN_PARAMS if n not in used]
if unused:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    to_add = c1.selectbox("Add a parameter", unused, key=f"{version}-add")
    if c2.button("Add", icon=":material/add:", width="stretch"):
        draft["space"] = new_space + [new_param(to_add)]
        reload(draft)

draft["space"] = new_space
if draft != load_draft(store):
    save_draft(store, draft)

problems = spec_problems(draft)
for i, name, slot in slots:
    for p in problems:
        if p.field.startswith(f"space.{name}") or p.field.startswith(f"space[{i}]"):
            slot.error(p.message, icon=":material/error:")
others = [p for p in problems if not p.field.startswith("space")]
for p in others:
    st.error(p.message, icon=":material/error:")

st.subheader("Size and preview")
spec: StudySpec | None = None
try:
    spec = parse_spec(draft)
except SpecError:
    st.info("Fix the problems above to see the size of the space and a sample.")
else:
    card = spec.cardinality()
    c1, c2 = st.columns(2)
    advice = range_advice(spec.space)
    for _, name, slot in slots:
        if name in advice:
            slot.info(advice[name], icon=":material/lightbulb:")
    c1.metric("Configurations", "continuous" if card is None else f"{card:,}")
    c2.metric("Trials in the budget", spec.budget.max_trials)
    st.dataframe(
        pd.DataFrame([{"Parameter": p.name, "Points": points_label(p)} for p in spec.space]),
        hide_index=True,
    )
    sample = pd.DataFrame(spec.sample(8))[[p.name for p in spec.space]]
    st.caption("A seeded sample of configurations from this space:")
    st.dataframe(sample, hide_index=True)

files, stem = downloads(draft, spec), file_stem(draft)
label = "" if spec else "draft "
note = "" if spec else " (does not validate yet)"
help_text = None if spec else "Saves the work in progress; fix the problems above before launching."
d1, d2, _spacer = st.columns([1, 1, 2] if spec else [2, 2, 1])
d1.download_button(
    f"Download {label}JSON{note}", files["json"], f"{stem}.json", "application/json", help=help_text
)
d2.download_button(
    f"Download {label}YAML{note}", files["yaml"], f"{stem}.yaml", "application/yaml", help=help_text
)
if spec and st.button("Continue to Launch", type="primary", icon=":material/rocket_launch:"):
    st.switch_page("app_pages/launch.py")
