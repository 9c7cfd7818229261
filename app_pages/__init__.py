"""CloudTune's Streamlit pages, registered by app.py with st.navigation (a package for mypy)."""
