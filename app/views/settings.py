"""Settings: the LLM, its backend and the LLMRG stage parameters, validated before use.

Changes apply to this browser session only (other analysts keep theirs); the
config file stays the default. A bad value gets a message naming the field,
never a traceback, and the previous settings stay in force.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import keys
from app.keys import REASONING_OVERRIDES
from app.state import (builder_load, get_studio, init_widget, llm_problem, reasoning_config,
                       reasoning_overrides, studio_or_stop)

AUTO_LAYERS = "all when the build can offload"
# The form's words for each [reasoning] field (the field names stay in error messages,
# which name the config file's fields).
LABELS = {"backend": "Backend", "model_path": "Model file", "http_url": "Server URL",
          "n_gpu_layers": "GPU layers", "temperature": "Temperature",
          "tau": "Keep chains scoring at least", "l_tru": "History window (films)",
          "k_intents": "Interests per chain", "r_items": "Films per interest"}


def form_values(config: Any) -> dict[str, Any]:
    """The form's widget values (by widget key) that show ``config``."""
    return {keys.SETTINGS_BACKEND: config.backend, keys.SETTINGS_MODEL: config.model_path,
            keys.SETTINGS_URL: config.http_url,
            keys.SETTINGS_LAYERS: "" if config.n_gpu_layers is None else str(config.n_gpu_layers),
            keys.SETTINGS_TEMPERATURE: float(config.temperature),
            keys.SETTINGS_TAU: float(config.tau), keys.SETTINGS_L_TRU: int(config.l_tru),
            keys.SETTINGS_K: int(config.k_intents), keys.SETTINGS_R: int(config.r_items)}


def reset_settings() -> None:
    """Back to the config file: the overrides and the values shown in the form (a button
    callback, so it runs before the form is drawn). The widget values are set, not deleted:
    the browser keeps showing a deleted widget's last value, and Apply would re-apply it."""
    st.session_state.pop(REASONING_OVERRIDES, None)
    st.session_state.update(form_values(reasoning_config(get_studio(), {})))
    st.session_state[keys.SETTINGS_WAS_RESET] = True


st.header("Settings")
studio = studio_or_stop()
try:
    current = reasoning_config(studio)
except ValueError as exc:   # a bad override or config value: show it, fall back to the file
    st.error(f"This session's settings are not valid any more ({exc}); the config file's are "
             "shown instead. Change them below and press Apply.")
    reset_settings()
    st.session_state.pop(keys.SETTINGS_WAS_RESET, None)
    current = reasoning_config(studio, {})
if st.session_state.pop(keys.SETTINGS_WAS_RESET, False):
    st.success("Back to the config file's settings.")

# The widgets take their values from session state only (seeded here, set by Reset).
for widget_key, widget_value in form_values(current).items():
    init_widget(widget_key, widget_value)

with st.form("settings_form"):
    st.subheader("LLM")
    backend = st.radio("Backend", ["llama", "http"], horizontal=True, key=keys.SETTINGS_BACKEND,
                       format_func={"llama": "in-process llama.cpp",
                                    "http": "OpenAI-compatible HTTP server"}.get)
    model_path = st.text_input("Model (GGUF path)", key=keys.SETTINGS_MODEL,
                               placeholder="empty: the packaged SmolLM2-135M-Instruct Q4_1")
    http_url = st.text_input("Server URL (HTTP backend)", key=keys.SETTINGS_URL)
    layers_text = st.text_input("GPU layers", placeholder=AUTO_LAYERS,
                                key=keys.SETTINGS_LAYERS,
                                help="-1 or empty: all layers when llama.cpp was built with CUDA; "
                                     "0: CPU only.")
    temperature = st.number_input("Temperature", step=0.1, key=keys.SETTINGS_TEMPERATURE,
                                  help="0 gives repeatable graphs (and KB reuse).")
    st.subheader("Reasoning graph")
    cols = st.columns(4)
    tau = cols[0].number_input(LABELS["tau"], step=0.05, key=keys.SETTINGS_TAU,
                               help="Chains the LLM's check scores lower are rejected.")
    l_tru = cols[1].number_input(LABELS["l_tru"], step=1, key=keys.SETTINGS_L_TRU,
                                 help="How many of the latest films the reasoning reads.")
    k_intents = cols[2].number_input(LABELS["k_intents"], step=1, key=keys.SETTINGS_K)
    r_items = cols[3].number_input(LABELS["r_items"], step=1, key=keys.SETTINGS_R)
    applied = st.form_submit_button("Apply", type="primary")


def parse_layers(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"reasoning.n_gpu_layers: must be a whole number, got {text!r}") from None


if applied:
    try:
        candidate: dict[str, Any] = {
            "backend": backend, "model_path": model_path, "http_url": http_url,
            "n_gpu_layers": parse_layers(layers_text), "temperature": temperature, "tau": tau,
            "l_tru": int(l_tru), "k_intents": int(k_intents), "r_items": int(r_items)}
        # Keep only what differs from the config file: the file stays the default.
        base = reasoning_config(studio, {}).model_dump()
        overrides = {k: v for k, v in candidate.items() if v != base.get(k)}
        validated = reasoning_config(studio, overrides)
        if validated.backend == "llama" and validated.model_path:
            from pathlib import Path
            if not Path(validated.model_path).expanduser().is_file():
                raise ValueError(f"reasoning.model_path: no file at {validated.model_path}; give "
                                 "the path of a .gguf file or leave it empty for the default")
    except ValueError as exc:
        st.error(f"Not applied: {exc}")
    else:
        st.session_state[REASONING_OVERRIDES] = overrides
        st.success("Applied to this session." if overrides else
                   "Back to the config file's settings.")

if reasoning_overrides():
    st.caption("Changed for this session: " + "; ".join(
        f"{LABELS.get(k, k)}: {v}" for k, v in reasoning_overrides().items()))
# Always offered: a value typed but not applied (a bad path) is reset too.
st.button("Reset to the config file", key=keys.SETTINGS_RESET, on_click=reset_settings,
          help="Drops this session's settings and the values typed in the form.")

st.subheader("Device and offload")
try:
    import llama_cpp
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    st.write(f"llama.cpp {getattr(llama_cpp, '__version__', '?')}: "
             f"{'built with GPU offload' if offload else 'CPU-only build'}.")
except ImportError:
    st.warning("llama-cpp-python is not installed: run `make setup`.")
import torch  # noqa: E402  (only for the device line)
st.write("torch device: " + (f"CUDA ({torch.cuda.get_device_name(0)})"
                             if torch.cuda.is_available() else "CPU"))
if st.button("Load the LLM and check the offload", key=keys.SETTINGS_CHECK):
    try:
        with st.spinner("Loading the LLM (and the text encoder)…"):
            load = builder_load()
            load.wait()
        if load.error is not None:
            raise load.error
        info = load.builder.backend.info()
    except Exception as exc:   # no model file, server down, bad value: say what to do
        st.error("Could not open the LLM. " + llm_problem(exc, reasoning_config(studio)))
    else:
        if info.llama is not None:
            offload = info.llama.offload
            st.write(f"Model `{info.model}`: {offload.offloaded} of "
                     f"{offload.offloadable or info.llama.n_layers} layers (llama.cpp "
                     f"counts the output layer) offloaded to the GPU, {info.n_threads} CPU "
                     f"threads, loaded in {info.load_seconds or 0.0:.1f} s.")
            if offload.warning:
                st.warning(offload.warning)
        else:
            url = info.http.url if info.http is not None else ""
            st.write(f"HTTP backend: the server at {url} serves the model "
                     f"`{info.model}`; it decides the GPU offload itself.")
