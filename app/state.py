"""App state: process-wide resources and the per-browser-session selection.

``get_studio`` is shared by every browser session (``st.cache_resource``; the
Studio is thread-safe). The chosen user lives under a plain session-state key,
not a widget key, so that it survives page switches: Streamlit drops the state
of widgets that the current page does not draw.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
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
    return reasoning_config(studio).l_tru


# ---------------------------------------------------------------- shared models
# Loading a model, the LLM or a fused run takes seconds to minutes; each is
# loaded once per process and shared by every browser session. Each holder
# carries a lock for the work that is not thread-safe by itself.


@dataclass
class FusionHandle:
    """The fused model the app explains, with what it was built from.

    Attributes:
        workspace: base model, user sample, graph source (``models.fusion.workspace``).
        run: the fused run (``[fusion] variant``) the explainer reads.
        explainer: top-k, branch effects, counterfactuals and explanation paths.
        lock: serializes explainer calls across browser sessions (torch modules
            and the explainer's caches are shared).
    """

    workspace: Any
    run: Any
    explainer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner="Loading the base and fused models…")
def get_fusion() -> FusionHandle:
    """The configured fused model; trains it first when no saved run matches (minutes)."""
    from reasonrec.fusion import workspace

    studio = get_studio()
    settings = studio.config.fusion
    ws = workspace(studio, settings)
    run = ws.fused(settings.variant)
    return FusionHandle(ws, run, ws.explainer(run))


REASONING_OVERRIDES = "rr_reasoning_overrides"


def reasoning_overrides() -> dict[str, Any]:
    """This browser session's ``[reasoning]`` overrides from the Settings page."""
    return dict(st.session_state.get(REASONING_OVERRIDES, {}))


def reasoning_config(studio: Studio, overrides: dict[str, Any] | None = None) -> Any:
    """The validated ``[reasoning]`` settings: config file, then this session's overrides.

    Raises:
        ValueError: a bad value, naming the field (``reasoning.tau: ...``).
    """
    values = reasoning_overrides() if overrides is None else overrides
    return studio.config.reasoning_settings(**values)


# No max_entries: evicting a builder another session is still using would load a
# second LLM beside it. Distinct settings are few (one per model/backend choice).
@st.cache_resource(show_spinner="Loading the local LLM…")
def _builder_for(overrides_json: str) -> Any:
    """One builder (one LLM) per distinct settings; sessions with the same settings share it."""
    import json

    from reasoning.builder import open_builder

    studio = get_studio()
    builder = open_builder(studio.dataset, reasoning_config(studio, json.loads(overrides_json)))
    builder.warm_up()
    return builder


def get_builder() -> Any:
    """The reasoning-graph builder for this session's settings (LLM calls serialized).

    Raises:
        ValueError: a bad setting; FileNotFoundError and friends: no model file.
    """
    import json

    return _builder_for(json.dumps(reasoning_overrides(), sort_keys=True))


def clear_shared() -> None:
    """Drop every shared resource (after a settings change, or between tests)."""
    for holder in (get_studio, get_fusion, _builder_for):
        holder.clear()
