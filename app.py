"""CloudTune's entry point: registers the pages, sets layout and theme, starts the preload.

After the first page has run, the results pages' imports load in the background, between
page runs (``core.preload``); Compare and Present wait for them rather than import them
alongside.
"""

import streamlit as st

from core import preload

st.set_page_config(page_title="CloudTune", page_icon="☁️", layout="wide")

pages = {
    "Study": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/search_space.py", title="Search space", icon=":material/tune:"),
        st.Page("app_pages/launch.py", title="Launch", icon=":material/rocket_launch:"),
        st.Page("app_pages/monitor.py", title="Monitor", icon=":material/monitoring:"),
    ],
    "Results": [
        compare := st.Page(
            "app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"
        ),
        present := st.Page("app_pages/present.py", title="Present", icon=":material/slideshow:"),
    ],
    "Setup": [st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:")],
}
page = st.navigation(pages)
if page in (compare, present):
    preload.wait()
try:
    with preload.paused():
        page.run()
finally:
    preload.start()
