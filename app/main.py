"""ReasonRec Studio: the Streamlit entry point (views only; logic lives in reasonrec/models).

Run with ``make run`` or ``streamlit run app/main.py --server.address 127.0.0.1``.
"""

from __future__ import annotations

import streamlit as st

from app.state import adopt_url, preload_reasoning, publish_url

# No page icons on purpose: Streamlit turns a ``:material/...:`` icon into a favicon
# fetched from fonts.gstatic.com, and the app must make no off-machine request
# (emoji would be inline data: URLs, but render as boxes without an emoji font).
st.set_page_config(page_title="ReasonRec Studio", layout="wide")

# The session explorer opens first: it needs only the data, so the app is
# interactive in seconds; the model pages load their models on first visit, except the
# reasoning LLM and text encoder, which start loading in the background once the first page
# is drawn (app.state.preload_reasoning), so that the first build need not wait for them.
PAGES = [
    st.Page("views/session_explorer.py", title="Session explorer", url_path="session-explorer",
            default=True),
    st.Page("views/reasoning.py", title="Reasoning", url_path="reasoning"),
    st.Page("views/recommendations.py", title="Recommendations", url_path="recommendations"),
    st.Page("views/evaluation.py", title="Evaluation", url_path="evaluation"),
    st.Page("views/knowledge_base.py", title="Knowledge base", url_path="knowledge-base"),
    st.Page("views/settings.py", title="Settings", url_path="settings"),
]

page = st.navigation(PAGES)
st.title("ReasonRec Studio")
# A shared link (?user=196&step=40) opens that user at that point on any page.
adopt_url()
try:
    page.run()
finally:   # also when the page stops early (st.stop); once per process, never waits
    publish_url()   # every page's address carries the user and point, to be shared
    preload_reasoning()
