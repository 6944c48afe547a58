"""App state: process-wide resources and the per-browser-session selection.

``get_studio`` is shared by every browser session (``st.cache_resource``; the
Studio is thread-safe). The chosen user lives under a plain session-state key,
not a widget key, so that it survives page switches: Streamlit drops the state
of widgets that the current page does not draw.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from reasonrec.config import load_config
from reasonrec.studio import Studio

CURRENT_USER = "rr_current_user"


@st.cache_resource(show_spinner="Loading the dataset…")
def get_studio() -> Studio:
    """One Studio per process: it is thread-safe and caches data and models."""
    studio = Studio(load_config())
    studio.dataset  # load eagerly so the first page has data
    return studio


def studio_or_stop() -> Studio:
    """The Studio, or an ``st.error`` saying what to do next (then the page stops)."""
    try:
        return get_studio()
    except Exception as exc:  # shown to the analyst with what to do next, never a traceback
        st.error(f"Could not load the dataset: {exc}. Check `[data] path` in your config "
                 "(or $REASONREC_CONFIG) or run `reasonrec data` in a terminal for details.")
        st.stop()
        raise  # unreachable: st.stop() raises


def current_user(studio: Studio) -> str:
    """The user chosen in this browser session (the dataset's first user by default)."""
    user = st.session_state.get(CURRENT_USER)
    dataset = studio.dataset
    try:
        dataset.user_index(user)
    except KeyError:
        return dataset.user_ids[0]
    return str(user)


def set_current_user(user: Any) -> None:
    st.session_state[CURRENT_USER] = str(user)


def init_widget(key: str, value: Any) -> None:
    """Seed a widget's value before it is drawn (only when it has none yet)."""
    if key not in st.session_state:
        st.session_state[key] = value


def window_length(studio: Studio) -> int:
    """``l_tru``, the session-window length, from the validated ``[reasoning]`` section.

    Raises:
        ValueError: a bad ``[reasoning]`` value, naming the field (e.g. ``reasoning.l_tru``).
    """
    from reasoning.config import load_reasoning_config  # the owner of [reasoning] validation

    return load_reasoning_config(studio.config.reasoning).l_tru
