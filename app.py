"""CloudTune's entry point: registers the pages, sets layout and theme; nothing else."""

import streamlit as st

st.set_page_config(page_title="CloudTune", page_icon="☁️", layout="wide")
st.title("CloudTune")
st.write(
    "Define a CNN hyperparameter search once, run it locally or on AWS SageMaker, "
    "Vertex AI and Azure ML, and compare time, cost and accuracy with proper statistics."
)
