"""catdog dashboard entry point: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="catdog", page_icon="🐾", layout="wide")
st.title("catdog")
st.write("Train a cat-vs-dog image classifier on a small dataset, in your browser.")
