"""Process-wide resources for the app (shared across browser sessions)."""

from __future__ import annotations

import streamlit as st

from reasonrec.config import load_config
from reasonrec.studio import Studio


@st.cache_resource(show_spinner="Loading the dataset…")
def get_studio() -> Studio:
    """One Studio per process: it is thread-safe and caches data and models."""
    studio = Studio(load_config())
    studio.dataset  # load eagerly so the first page has data
    return studio
