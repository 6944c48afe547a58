"""Recommendations page: dataset summary and a user's base top-k.

A first page; the fused, explained page (base vs fused top-k, rank shifts,
explanations, counterfactuals) replaces it later.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.state import current_user, init_widget, set_current_user, studio_or_stop
from models.recommenders import MODEL_NAMES
from models.runs import latest_run

studio = studio_or_stop()
summary = studio.dataset_summary()
cols = st.columns(4)
for col, key in zip(cols, ("users", "items", "interactions", "sessions")):
    col.metric(key.capitalize(), f"{summary[key]:,}")
st.caption(f"Dataset **{summary['dataset']}** from `{summary['source']}`; sessions split at "
           f"{summary['session_gap_minutes']:g}-minute gaps.")


def has_run(name: str) -> bool:
    """A trained run exists (pop needs none); a model that cannot be loaded is skipped."""
    if name == "pop":
        return True
    try:
        return latest_run(studio.config.runs_dir, dataset.name, name) is not None
    except Exception:  # e.g. a model module that is not installed yet
        return False


dataset = studio.dataset
left, right = st.columns([1, 2])
with left:
    init_widget("user", current_user(studio))
    user = st.selectbox("User", dataset.user_ids, key="user")
    set_current_user(user)
    trained = [m for m in MODEL_NAMES if has_run(m)]
    model_name = st.selectbox("Model", trained, key="model",
                              help="Models with a trained run; train others with "
                                   "`reasonrec train --model NAME`.")
    k = st.slider("k", 5, 50, studio.config.recommend.k, key="k")
    history = dataset.history(user)
    st.subheader(f"History ({len(history)} items)")
    st.dataframe(pd.DataFrame([studio.item_json(i) for i in history[::-1][:50]]),
                 hide_index=True, height=400)

with right:
    st.subheader(f"Top-{k} from {model_name}")
    try:
        result = studio.recommend(user, k, model_name)
    except Exception as exc:
        st.error(f"Could not recommend for user {user} with {model_name}: {exc}. "
                 "Pick another model, or train this one with "
                 f"`reasonrec train --model {model_name}`.")
        st.stop()
    if not result["top_k"]:
        st.info(f"User {user} has seen every item, so there is nothing new to recommend. "
                "Pick another user, or set `[recommend] exclude_seen = false` in your config.")
        st.stop()
    st.dataframe(pd.DataFrame(result["top_k"])[["rank", "title", "year", "score", "item_id"]],
                 hide_index=True)
