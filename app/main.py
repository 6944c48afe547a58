"""ReasonRec Studio: the Streamlit entry point (views only; logic lives in reasonrec/models)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.state import get_studio
from models.recommenders import MODEL_NAMES
from models.runs import latest_run

st.set_page_config(page_title="ReasonRec Studio", layout="wide")
st.title("ReasonRec Studio")

try:
    studio = get_studio()
except Exception as exc:  # shown to the analyst with what to do next, never a traceback
    st.error(f"Could not load the dataset: {exc}. Check `[data] path` in your config "
             "or run `reasonrec data` in a terminal for details.")
    st.stop()

summary = studio.dataset_summary()
cols = st.columns(4)
for col, key in zip(cols, ("users", "items", "interactions", "sessions")):
    col.metric(key.capitalize(), f"{summary[key]:,}")
st.caption(f"Dataset **{summary['dataset']}** from `{summary['source']}`; sessions split at "
           f"{summary['session_gap_minutes']:g}-minute gaps.")

dataset = studio.dataset
left, right = st.columns([1, 2])
with left:
    user = st.selectbox("User", dataset.user_ids, key="user")
    trained = [m for m in MODEL_NAMES
               if m == "pop" or latest_run(studio.config.runs_dir, dataset.name, m) is not None]
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
        st.error(f"Could not recommend for user {user}: {exc}")
        st.stop()
    st.dataframe(pd.DataFrame(result["top_k"])[["rank", "title", "year", "score", "item_id"]],
                 hide_index=True)
