"""Settings: the LLM, its backend and the LLMRG stage parameters, validated before use.

Changes apply to this browser session only (other analysts keep theirs); the
config file stays the default. A bad value gets a message naming the field,
never a traceback, and the previous settings stay in force.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.state import (REASONING_OVERRIDES, builder_load, llm_problem, reasoning_config,
                       reasoning_overrides, studio_or_stop)

# The form's widget keys: Reset drops them too, or the form would keep showing (and Apply
# would re-apply) the values being reset.
FORM_KEYS = ("settings_backend", "settings_model", "settings_url", "settings_layers",
             "settings_temperature", "settings_tau", "settings_l_tru", "settings_k", "settings_r")


def reset_settings() -> None:
    """Back to the config file: the overrides and the form's values (a button callback, so it
    runs before the form is drawn again)."""
    st.session_state.pop(REASONING_OVERRIDES, None)
    for key in FORM_KEYS:
        st.session_state.pop(key, None)
    st.session_state["settings_was_reset"] = True

st.header("Settings")
studio = studio_or_stop()
try:
    current = reasoning_config(studio)
except ValueError as exc:   # a bad override or config value: show it, fall back to the file
    st.error(f"This session's settings are not valid any more ({exc}); the config file's are "
             "shown instead. Change them below and press Apply.")
    reset_settings()
    st.session_state.pop("settings_was_reset", None)
    current = reasoning_config(studio, {})
if st.session_state.pop("settings_was_reset", False):
    st.success("Back to the config file's settings.")

AUTO_LAYERS = "all when the build can offload"

with st.form("settings_form"):
    st.subheader("LLM")
    backend = st.radio("Backend", ["llama", "http"], horizontal=True,
                       index=["llama", "http"].index(current.backend), key="settings_backend",
                       format_func={"llama": "in-process llama.cpp",
                                    "http": "OpenAI-compatible HTTP server"}.get)
    model_path = st.text_input("Model (GGUF path)", current.model_path, key="settings_model",
                               placeholder="empty: the packaged SmolLM2-135M-Instruct Q4_1")
    http_url = st.text_input("Server URL (HTTP backend)", current.http_url, key="settings_url")
    layers_text = st.text_input("GPU layers (n_gpu_layers)",
                                "" if current.n_gpu_layers is None else str(current.n_gpu_layers),
                                placeholder=AUTO_LAYERS, key="settings_layers",
                                help="-1 or empty: all layers when llama.cpp was built with CUDA; "
                                     "0: CPU only.")
    temperature = st.number_input("Temperature", value=float(current.temperature), step=0.1,
                                  key="settings_temperature",
                                  help="0 gives repeatable graphs (and KB reuse).")
    st.subheader("Reasoning graph")
    cols = st.columns(4)
    tau = cols[0].number_input("τ (keep chains scoring at least)", value=float(current.tau),
                               step=0.05, key="settings_tau")
    l_tru = cols[1].number_input("Window l_tru", value=int(current.l_tru), step=1,
                            key="settings_l_tru")
    k_intents = cols[2].number_input("K (next intents per chain)", value=int(current.k_intents),
                                     step=1, key="settings_k")
    r_items = cols[3].number_input("r (items per intent)", value=int(current.r_items), step=1,
                              key="settings_r")
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
    st.caption("This session overrides: " + ", ".join(f"`{k}` = `{v}`"
                                                       for k, v in reasoning_overrides().items()))
# Always offered: a value typed but not applied (a bad path) is reset too.
st.button("Reset to the config file", key="settings_reset", on_click=reset_settings,
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
if st.button("Load the LLM and check the offload", key="settings_check"):
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
        if info.get("backend") == "llama":
            st.write(f"Model `{info['model_path']}`: {info['n_gpu_layers_offloaded']} of "
                     f"{info.get('n_gpu_layers_offloadable', info['n_layers'])} layers (llama.cpp "
                     f"counts the output layer) offloaded to the GPU, {info['n_threads']} CPU "
                     f"threads, loaded in {info['load_seconds']:.1f} s.")
            if info.get("offload_warning"):
                st.warning(info["offload_warning"])
        else:
            st.write(f"HTTP backend: the server at {info.get('url')} serves the model "
                     f"`{info.get('model')}`; it decides the GPU offload itself.")
