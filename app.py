"""CloudTune's entry point: registers the pages, sets layout and theme; nothing else."""

import streamlit as st

st.set_page_config(page_title="CloudTune", page_icon="☁️", layout="wide")

pages = {
    "Study": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/search_space.py", title="Search space", icon=":material/tune:"),
        st.Page("app_pages/launch.py", title="Launch", icon=":material/rocket_launch:"),
        st.Page("app_pages/monitor.py", title="Monitor", icon=":material/monitoring:"),
    ],
    "Results": [
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/present.py", title="Present", icon=":material/slideshow:"),
    ],
    "Setup": [st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:")],
}
st.navigation(pages).run()
