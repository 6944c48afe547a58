"""A clickable graph: a Streamlit custom component (v2, no build step) around a vis-network page.

pyvis output cannot talk to Python, so the component mounts the offline graph
document in a **sandboxed** ``srcdoc`` iframe (``sandbox="allow-scripts"``:
an opaque origin, so even a script that slipped into the graph could not
touch the app page or its cookies) and relays the iframe's
``{type: "rr-node-click", id}`` messages to Python as the trigger value
``clicked``. The node Python has selected is sent back down as ``selected``
and highlighted in the graph (when it changed, or after a reload).

The document is only reloaded when its digest changes, so selecting a node
(a rerun) does not redraw the graph or lose the user's zoom.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import streamlit as st

COMPONENT_NAME = "reasonrec_graph_select"

_CSS = """
.rr-graph-select iframe { width: 100%; border: 0; display: block; }
"""

# Runs in the app page. Streamlit calls it on mount and on every new ``data``;
# state lives on the parent element so a second call reuses the same iframe
# and listener instead of stacking them.
_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector("div.rr-graph-select");
  if (!root) {
    root = document.createElement("div");
    root.className = "rr-graph-select";
    parentElement.appendChild(root);
  }
  let frame = root.querySelector("iframe");
  if (!frame) {
    frame = document.createElement("iframe");
    frame.setAttribute("sandbox", "allow-scripts");
    frame.setAttribute("title", data.title || "graph");
    frame.setAttribute("data-testid", "rr-graph-frame");
    root.appendChild(frame);
  }
  frame.style.height = String(data.height || 560) + "px";
  // Python's selection lags one rerun behind a click (the click *is* that rerun), so
  // it is applied only when it changed, or when the graph was reloaded: a stale
  // value must not undo the node the user just clicked.
  const wanted = data.selected || null;
  const select = (force) => {
    if (!force && root.__rrApplied === wanted) { return; }
    root.__rrApplied = wanted;
    if (frame.contentWindow) {
      frame.contentWindow.postMessage({type: "rr-select", id: wanted}, "*");
    }
  };
  if (root.__rrOnMessage) {
    window.removeEventListener("message", root.__rrOnMessage);
  }
  const onMessage = (event) => {
    if (event.source !== frame.contentWindow) { return; }
    const message = event.data || {};
    if (message.type === "rr-node-click" && typeof message.id === "string") {
      setTriggerValue("clicked", message.id);
    } else if (message.type === "rr-graph-ready") {
      select(true);
    }
  };
  root.__rrOnMessage = onMessage;
  window.addEventListener("message", onMessage);
  if (frame.getAttribute("data-digest") !== data.digest) {
    frame.setAttribute("data-digest", data.digest);
    frame.srcdoc = data.html;
  } else {
    select(false);
  }
  return () => {
    window.removeEventListener("message", onMessage);
    if (root.__rrOnMessage === onMessage) { root.__rrOnMessage = null; }
  };
}
"""

# Registered once per process (re-registering per rerun would log a warning).
_MOUNT = st.components.v2.component(COMPONENT_NAME, css=_CSS, js=_JS, isolate_styles=False)


def _clicked_from_state(key: str) -> str | None:
    """The ``clicked`` trigger as Session State presents it during this rerun's callbacks."""
    value = st.session_state.get(key)
    clicked = value.get("clicked") if hasattr(value, "get") else getattr(value, "clicked", None)
    return clicked if isinstance(clicked, str) else None


def graph_select(document: str, *, key: str, selected: str | None = None, height: int = 560,
                 title: str = "graph", on_click: Callable[[str], None] | None = None) -> str | None:
    """Draw ``document`` (a complete offline graph page) and return the node id clicked in
    this rerun, or ``None``.

    Args:
        document: HTML from :func:`app.components.reasoning_view.reasoning_graph_html`
            (escaped and offline-checked there; it runs sandboxed here).
        key: the component's widget key.
        selected: the node to highlight.
        height: iframe height in pixels.
        on_click: called with the clicked node id *before* the script reruns, so the
            page can select the node before it draws the graph (then ``selected`` is
            already the clicked node, not the previous one).
    """

    def clicked_callback() -> None:
        clicked = _clicked_from_state(key)
        if clicked is not None and on_click is not None:
            on_click(clicked)

    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()[:16]
    result: Any = _MOUNT(key=key, data={"html": document, "digest": digest, "selected": selected,
                                        "height": int(height), "title": title},
                         height=int(height) + 8, on_clicked_change=clicked_callback)
    clicked = getattr(result, "clicked", None) if result is not None else None
    return clicked if isinstance(clicked, str) else None
