"""Home: what CloudTune does, recent runs, and the way in."""

import streamlit as st

from app_pages._shared import friendly, get_store
from core.analysis.views import runs_overview
from core.runs import check_liveness, failure_alert

st.title("CloudTune")
st.markdown(
    "Define a CNN hyperparameter search once, run it **locally** or on **AWS SageMaker**, "
    "**Vertex AI** and **Azure ML**, and compare time, cost and accuracy side by side with "
    "the statistics an analyst expects."
)
left, right, _ = st.columns([1, 1, 3])
if left.button("Start a study", type="primary", icon=":material/add:"):
    st.switch_page("app_pages/search_space.py")
if right.button("Monitor runs", icon=":material/monitoring:"):
    st.switch_page("app_pages/monitor.py")

store = get_store()
studies = store.list_studies()
with friendly("Checking the runs' workers"):
    check_liveness(store)
st.subheader("Recent runs")
for run in store.list_runs()[:20]:
    alert = failure_alert(run)
    if alert:
        st.error(alert, icon=":material/error:")
overview = runs_overview(store, limit=20)
if overview.empty:
    st.info(
        "No runs yet. Start with the published study's search space on the bundled digits "
        "dataset: it runs on this machine in about a minute."
    )
else:
    st.dataframe(
        overview,
        hide_index=True,
        width="stretch",
        column_config={
            "Best objective": st.column_config.NumberColumn(format="%.4f"),
            "Cost (USD)": st.column_config.NumberColumn(format="$%.2f"),
        },
    )

if studies:
    st.subheader("Open a study")
    names = {f"{s.name} (study {s.id})": s.id for s in studies}
    choice = st.selectbox("Study", list(names), key="home_study")
    if st.button("Open in Compare", icon=":material/compare_arrows:"):
        st.session_state["compare_study"] = names[choice]
        st.switch_page("app_pages/compare.py")
