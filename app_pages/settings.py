"""Settings: data folder and database, platform configuration and credential status, prices."""

from typing import Any

import streamlit as st

from app_pages._shared import friendly, get_store
from core.backends.base import BACKENDS, get_backend
from core.backends.platforms import PLATFORM_SETTINGS, SettingField, load_settings, save_settings
from core.costs.pricing import recost_local_runs
from core.store import data_home, redact_url


def _field_input(platform: str, f: SettingField, value: Any) -> float | int | str:
    """One settings widget: a number input for a number default, a text input otherwise."""
    key = f"set_{platform}_{f.key}"
    if isinstance(f.default, float):
        return st.number_input(
            f.label,
            min_value=0.0,
            value=float(value or 0),
            help=f.help or None,
            format="%.4f",
            key=key,
        )
    if isinstance(f.default, int):
        number: int = st.number_input(
            f.label, min_value=0, value=int(value or 0), help=f.help or None, key=key
        )
        return number
    text = "" if value is None else str(value)
    return st.text_input(f.label, value=text, help=f.help or None, key=key).strip()


store = get_store()
st.title("Settings")
st.caption(
    "Only names and numbers are kept here. Credentials come from each cloud's standard chain "
    "(AWS profiles/SSO/roles, Google Application Default Credentials, Azure's "
    "DefaultAzureCredential) and are never shown or stored."
)

st.subheader("Storage")
c1, c2 = st.columns(2)
c1.text_input("Data folder (set CLOUDTUNE_HOME to change)", str(data_home()), disabled=True)
c2.text_input("Database (set CLOUDTUNE_DB to change)", redact_url(store.url), disabled=True)

st.subheader("Platforms")
tabs = st.tabs([BACKENDS[name] for name in PLATFORM_SETTINGS])
for tab, (name, fields) in zip(tabs, PLATFORM_SETTINGS.items(), strict=True):
    with tab:
        current = load_settings(store, name)
        with st.form(f"form_{name}", border=False):
            values: dict[str, float | int | str] = {}
            for f in fields:
                values[f.key] = _field_input(name, f, current.get(f.key, f.default))
            if st.form_submit_button("Save", type="primary"):
                save_settings(store, name, values)
                st.success("Saved.")
                if name == "local":  # the new rate applies to the runs already made too
                    with friendly("Re-costing local runs"):
                        recosted = recost_local_runs(store)
                        st.caption(f"{len(recosted)} ended local run(s) re-costed at this rate.")
                current = load_settings(store, name)
        with friendly(f"Checking {BACKENDS[name]}"):
            missing = get_backend(name, store).check(current)
            if missing:
                st.warning(
                    "Not ready yet:\n" + "\n".join(f"- {m}" for m in missing),
                    icon=":material/warning:",
                )
            else:
                st.success(f"{BACKENDS[name]} is ready.", icon=":material/check_circle:")

st.subheader("Prices")
with friendly("Loading the price catalog"):
    from core.costs import pricing

    frame = pricing.catalog_frame(store)
    stale = int(frame["stale"].sum()) if "stale" in frame else 0
    if stale:
        st.warning(
            f"{stale} price(s) are older than 6 months: check them against the "
            "vendor's page and enter the current figure below.",
            icon=":material/schedule:",
        )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "usd_per_hour": st.column_config.NumberColumn("USD per hour", format="$%.4f"),
            "age_days": st.column_config.NumberColumn("Age (days)"),
        },
    )
    with st.form("price_override", border=True):
        st.markdown("**Override a price** (kept in the store; the catalog file is unchanged)")
        c1, c2, c3, c4 = st.columns(4)
        backend = c1.selectbox("Platform", [b for b in BACKENDS if b != "local"])
        instance = c2.text_input("Instance type", placeholder="ml.m5.xlarge")
        region = c3.text_input("Region (optional)")
        price = c4.number_input("USD per hour", min_value=0.0, format="%.4f")
        if st.form_submit_button("Save price"):
            if not instance.strip():
                st.error("Instance type is empty: give the machine type the price is for.")
            else:
                pricing.set_price_override(
                    store, backend, instance.strip(), float(price), region=region.strip() or None
                )
                st.success(f"Saved ${price:.4f}/h for {instance} on {BACKENDS[backend]}.")
