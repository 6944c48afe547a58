"""Knowledge base: browse the stored LLM answers, hit rates over time, export and clear.

The KB (``reasoning.kb``) stores every reusable answer of the four stages,
tagged with model and prompt version. This page reads it; clearing asks for a
confirmation first because every answer would have to be asked again.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import keys
from app.state import reasoning_config, studio_or_stop

PAGE_SIZE = 50

st.header("Knowledge base")
studio = studio_or_stop()
try:
    config = reasoning_config(studio)
except ValueError as exc:
    st.error(f"A reasoning setting is not valid: {exc}. Fix it on the **Settings** page.")
    st.stop()


def open_kb():
    from reasonrec.reasoning_api import KnowledgeBaseError

    try:
        return studio.knowledge_base(config)
    except KnowledgeBaseError as exc:
        st.error(f"{exc}. Clear it with `reasonrec kb clear` (or delete the file) and reload.")
        st.stop()
    except OSError as exc:   # the data directory cannot be created or written
        st.error(f"The knowledge base cannot be opened: {exc}. Check that the data directory "
                 "is writable, then reload the page.")
        st.stop()


def in_words(value: object) -> str:
    """A stored question or answer as text: "field: value; …" instead of JSON."""
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {in_words(v)}" for key, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(in_words(v) for v in value)
    return "" if value is None else str(value)


kb = open_kb()
try:
    stats = kb.stats()
    cols = st.columns(4)
    cols[0].metric("Entries", f"{stats['entries']:,}")
    cols[1].metric("Lookups", f"{stats['hits'] + stats['misses']:,}")
    cols[2].metric("Hit rate", "–" if stats["hit_rate"] is None else f"{stats['hit_rate']:.0%}")
    cols[3].metric("Size", f"{stats['bytes'] / 1e6:.1f} MB")
    st.caption(f"Prompt versions: {', '.join(stats['prompt_versions']) or '–'}")
    if stats["kinds"]:
        st.dataframe(pd.DataFrame([{"kind": kind, **values} for kind, values in stats["kinds"].items()]),
                     hide_index=True)

    history = kb.history()
    if history:
        frame = pd.DataFrame(history)
        frame["when"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        figure = go.Figure()
        for kind, rows in frame.groupby("kind"):
            hits, lookups = rows["hits"].cumsum(), (rows["hits"] + rows["misses"]).cumsum()
            figure.add_trace(go.Scatter(x=rows["when"], y=hits / lookups, mode="lines", name=kind))
        totals = frame.groupby("time")[["hits", "misses"]].sum().cumsum()
        figure.add_trace(go.Scatter(x=pd.to_datetime(totals.index, unit="s", utc=True),
                                    y=totals["hits"] / (totals["hits"] + totals["misses"]),
                                    mode="lines", name="all", line={"width": 4}))
        figure.update_layout(title="Cumulative hit rate over time", yaxis_title="hit rate",
                             yaxis_range=[0, 1], height=320, margin={"t": 40, "b": 30})
        st.plotly_chart(figure, key="kb_hit_rate_chart")
    else:
        st.info("No lookups recorded yet: build reasoning graphs (Reasoning page or "
                "`reasonrec build-graphs`) and the hit rates appear here.")

    st.subheader("Stored answers")
    left, middle, right = st.columns([1, 2, 1])
    kind = left.selectbox("Kind", ["all", *sorted(stats["kinds"])], key=keys.KB_KIND)
    search = middle.text_input("Search questions and answers", key=keys.KB_SEARCH,
                               placeholder="a title, an intent, a reason…")
    page = right.number_input("Page", min_value=1, value=1, step=1, key=keys.KB_PAGE)
    rows = kb.entries(None if kind == "all" else kind, search.strip(), PAGE_SIZE,
                      (int(page) - 1) * PAGE_SIZE)
    if rows:
        # Question and answer in words (st.dataframe shows cells as plain text)
        table = pd.DataFrame([{
            "kind": r["kind"], "prompt": r["prompt_version"],
            "question": in_words(r["question"]), "answer": in_words(r["answer"]),
            "stored": datetime.fromtimestamp(r["created"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M"),
        } for r in rows])
        st.dataframe(table, hide_index=True, key="kb_entries")
    else:
        st.info("No stored answer matches." if stats["entries"] else "The knowledge base is empty.")

    st.subheader("Export and clear")
    export_col, clear_col = st.columns(2)
    export_col.download_button("Export all entries (JSON lines)", kb.export_jsonl(),
                               file_name="reasonrec-kb.jsonl", mime="application/x-ndjson",
                               key=keys.KB_EXPORT, disabled=not stats["entries"])
    with clear_col:
        confirm = st.checkbox("I understand every answer will be asked again", key=keys.KB_CONFIRM)
        if st.button("Clear the knowledge base", key=keys.KB_CLEAR, disabled=not confirm,
                     type="primary"):
            removed = kb.clear()
            st.success(f"Removed {removed:,} entries and the counters.")
    with st.expander("Details"):
        st.caption(f"Knowledge base file: {stats['path']}.")
finally:
    kb.close()
