"""ReasonRec Studio: the Streamlit entry point (views only; logic lives in reasonrec/models).

Run with ``make run`` or ``streamlit run app/main.py --server.address 127.0.0.1``.
"""

from __future__ import annotations

import streamlit as st

# No page icons on purpose: Streamlit turns a ``:material/...:`` icon into a favicon
# fetched from fonts.gstatic.com, and the app must make no off-machine request
# (emoji would be inline data: URLs, but render as boxes without an emoji font).
st.set_page_config(page_title="ReasonRec Studio", layout="wide")

PAGES = [
    st.Page("views/recommendations.py", title="Recommendations", url_path="recommendations",
            default=True),
    st.Page("views/session_explorer.py", title="Session explorer", url_path="session-explorer"),
]

page = st.navigation(PAGES)
st.title("ReasonRec Studio")
page.run()
