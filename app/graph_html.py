"""Offline pyvis HTML for a session window (a view: it draws, it computes nothing).

The page embeds the result with ``st.iframe``. Three rules hold for every graph:

* **Offline.** pyvis runs with ``cdn_resources="in_line"``, its template's
  hard-coded Bootstrap CDN ``<link>``/``<script>`` tags are stripped, and
  :func:`check_offline` refuses HTML that would still load anything remote.
* **Escaped.** Titles, years and genres come from data files (untrusted). The
  tooltips are HTML, so every piece of data is ``html.escape``d before it goes
  in; pyvis serialises node data with Jinja's ``tojson`` (which also encodes
  ``<``, ``>``, ``&`` and ``'``), so nothing can close the ``<script>`` block.
  Node labels are drawn on the canvas as plain text.
* **Honest about the target.** The true next item is drawn distinctly and
  marked "never seen by the models": it is there for error analysis only.

Tooltips are passed to the browser as a ``tooltip_html`` node field, not as
pyvis's ``title``: vis-network 9 shows a string ``title`` as plain text, and
pyvis switches to an ``innerHTML`` popup when a title contains "href". A small
script turns each escaped ``tooltip_html`` into a DOM element, the documented
vis-network way to get formatted tooltips.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader
from pyvis.network import Network

from reasonrec.session_window import GraphItem

NEXT_ITEM_ID = "next"
NEVER_SEEN = "never seen by the models"
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

# Remote resource loads: src/href attributes, CSS url() and @import to http(s) or //host.
_REMOTE_LOAD = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?\s*)"""
    r"""(?:https?:)?//""", re.IGNORECASE)
_CDN_LINK = re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//[^>]*>""", re.IGNORECASE)
_CDN_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>\s*</script\s*>""", re.IGNORECASE)
_EMPTY_HEADING = re.compile(r"<center>\s*<h1>\s*</h1>\s*</center>", re.IGNORECASE)


class OfflineHTMLError(ValueError):
    """Generated HTML would load a resource from off the machine."""


@lru_cache(maxsize=4)
def _template_env(template_dir: str) -> Environment:
    return Environment(loader=FileSystemLoader(template_dir))


@lru_cache(maxsize=1)
def load_style() -> dict[str, Any]:
    """The graph style from ``assets/styles/session_graph.json`` (colours validated)."""
    text = resources.files("assets").joinpath("styles/session_graph.json").read_text("utf-8")
    style = json.loads(text)
    colours = [style["fallback_color"], style["background"], style["font_color"],
               style["edge"]["color"], style["session_break_edge"]["color"],
               style["next_item"]["background"], style["next_item"]["border"],
               style["next_item"]["edge_color"], *style["genre_palette"].values()]
    bad = [c for c in colours if not _HEX_COLOUR.match(str(c))]
    if bad:
        raise ValueError(f"assets/styles/session_graph.json: colours must be #rrggbb, got {bad}")
    return style


@lru_cache(maxsize=1)
def load_css() -> str:
    return resources.files("assets").joinpath("styles/session_graph.css").read_text("utf-8")


def genre_color(genres: Sequence[str], style: dict[str, Any] | None = None) -> str:
    """Colour of an item: its first genre that the palette knows, else the fallback."""
    style = style or load_style()
    palette = style["genre_palette"]
    for genre in genres:
        if genre in palette:
            return palette[genre]
    return style["fallback_color"]


def short_label(title: str, max_chars: int) -> str:
    """A one-line label for the canvas (plain text there, never HTML)."""
    title = " ".join(title.split()) or "untitled"
    return title if len(title) <= max_chars else title[: max_chars - 1].rstrip() + "…"


def tooltip_html(item: GraphItem, step: int | None, is_next: bool = False) -> str:
    """Tooltip HTML for one item; every data field is escaped."""
    e = html.escape
    year = e(str(item.year)) if item.year is not None else "year unknown"
    genres = e(", ".join(item.genres)) if item.genres else "no genres"
    where = "true next item" if is_next else f"item {step} of the window"
    parts = [f'<div class="rr-tip-title">{e(item.title)}</div>',
             f'<div class="rr-tip-meta">{year} · {genres}</div>',
             f'<div class="rr-tip-meta">film {item.position + 1} of the history · {e(where)}'
             f' · session {item.session}</div>']
    if is_next:
        parts.append(f'<div class="rr-tip-next">{e(NEVER_SEEN.capitalize())}: '
                     "shown for error analysis only.</div>")
    return "".join(parts)


def serpentine(step: int, style: dict[str, Any]) -> tuple[int, int]:
    """Canvas position of the ``step``-th item (1-based): rows of ``per_row`` items,
    left to right, then right to left, so that time reads along the arrows."""
    per_row = max(1, int(style["per_row"]))
    row, col = divmod(step - 1, per_row)
    if row % 2:
        col = per_row - 1 - col
    return col * int(style["x_spacing"]), row * int(style["y_spacing"])


def build_network(window: Sequence[GraphItem], next_item: GraphItem | None,
                  height_px: int = 460, style: dict[str, Any] | None = None) -> Network:
    """The pyvis network: window items in time order (see :func:`serpentine`), then the next item."""
    style = style or load_style()
    net = Network(height=f"{int(height_px)}px", width="100%", directed=True,
                  bgcolor=style["background"], font_color=style["font_color"],
                  cdn_resources="in_line")
    # pyvis makes a Jinja environment per Network and so recompiles its template
    # (with 650 kB of inlined vis-network) every time: share one, ~0.3 s saved per graph.
    share_template(net)
    size = style["node_size"]
    for step, item in enumerate(window, start=1):
        x, y = serpentine(step, style)
        net.add_node(
            # numbered as films of the history: the scale of the point and the session list
            f"p{item.position}",
            label=f"{item.position + 1}. {short_label(item.title, style['label_max_chars'])}",
            shape="dot", size=size, color=genre_color(item.genres, style), x=x, y=y,
            tooltip_html=tooltip_html(item, step), role="window", step=step)
    for prev, item in zip(window, window[1:]):
        looks = style["edge"] if item.session == prev.session else style["session_break_edge"]
        options: dict[str, Any] = {"color": looks["color"], "width": looks["width"]}
        if "dashes" in looks:
            options["dashes"] = looks["dashes"]
            options["title"] = "new session"  # a fixed string of ours, shown as text
        net.add_edge(f"p{prev.position}", f"p{item.position}", **options)
    if next_item is not None:
        looks = style["next_item"]
        step = len(window) + 1
        x, y = serpentine(step, style)
        net.add_node(
            NEXT_ITEM_ID,
            label=f"NEXT ({NEVER_SEEN})\n{short_label(next_item.title, style['label_max_chars'])}",
            shape=looks["shape"],
            color={"background": looks["background"], "border": looks["border"],
                   "highlight": {"background": looks["background"], "border": looks["border"]},
                   "hover": {"background": looks["background"], "border": looks["border"]}},
            borderWidth=looks["border_width"], shapeProperties={"borderDashes": looks["dashes"]},
            x=x, y=y, tooltip_html=tooltip_html(next_item, None, is_next=True), role="next")
        if window:
            net.add_edge(f"p{window[-1].position}", NEXT_ITEM_ID, color=looks["edge_color"],
                         dashes=looks["dashes"], width=2)
    net.options = {
        "physics": {"enabled": False},
        "interaction": {"dragNodes": True, "dragView": True, "zoomView": True,
                        "hover": True, "tooltipDelay": 100, "navigationButtons": False},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}},
                  "smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.12}},
        "nodes": {"font": {"size": 14, "face": "sans-serif", "color": style["font_color"]}},
        "layout": {"randomSeed": 7},
    }
    return net


# Runs after pyvis's drawGraph() in every graph document: each escaped tooltip
# string (nodes here; ``tips(edges)`` for documents whose edges have tooltips)
# becomes a DOM element (innerHTML of escaped text cannot create markup), the
# view is fitted, and the network is exposed for browser tests.
_SCRIPT_PRELUDE = """
  if (typeof nodes === "undefined" || typeof network === "undefined") { return; }
  function tips(dataset) {
    var updates = [];
    dataset.forEach(function (entry) {
      if (typeof entry.tooltip_html === "string") {
        var element = document.createElement("div");
        element.className = "rr-tip";
        element.innerHTML = entry.tooltip_html;
        updates.push({id: entry.id, title: element});
      }
    });
    dataset.update(updates);
  }
  tips(nodes);
  network.fit({animation: false});
  window.rrNetwork = network;
  window.rrNodes = nodes;
"""


def graph_script(body: str = "") -> str:
    """The shared graph script (tooltips, fit, ``window.rrNetwork``), then ``body`` (trusted
    JavaScript of ours, run in the same scope: ``nodes``, ``edges``, ``network``, ``tips``)."""
    return f"<script>\n(function () {{{_SCRIPT_PRELUDE}{body}}})();\n</script>\n"


def legend_html(window: Sequence[GraphItem], next_item: GraphItem | None,
                style: dict[str, Any] | None = None) -> str:
    """A genre legend for the genres on screen (escaped; colours come from our palette)."""
    style = style or load_style()
    seen: dict[str, str] = {}
    for item in [*window, *([next_item] if next_item else [])]:
        key = next((g for g in item.genres if g in style["genre_palette"]),
                   item.genres[0] if item.genres else "no genre")
        seen.setdefault(key, genre_color(item.genres, style))
    spans = [f'<span><span class="rr-swatch" style="background:{colour}"></span>'
             f"{html.escape(name)}</span>" for name, colour in seen.items()]
    if next_item is not None:
        border = style["next_item"]["border"]
        spans.append(f'<span><span class="rr-swatch rr-next-swatch" style="border-color:{border}">'
                     f"</span>true next item ({html.escape(NEVER_SEEN)})</span>")
    return '<div class="rr-legend" id="rr-legend">' + "".join(spans) + "</div>"


def strip_cdn(document: str) -> str:
    """Remove pyvis's hard-coded CDN tags and its empty heading."""
    document = _CDN_LINK.sub("", document)
    document = _CDN_SCRIPT.sub("", document)
    return _EMPTY_HEADING.sub("", document)


def check_offline(document: str) -> None:
    """Raise :class:`OfflineHTMLError` if ``document`` would load anything remote."""
    match = _REMOTE_LOAD.search(document)
    if match:
        start = max(0, match.start() - 40)
        raise OfflineHTMLError("graph HTML still loads a remote resource near: "
                               + document[start: match.end() + 60].replace("\n", " "))


def share_template(net: Network) -> Network:
    """Give ``net`` the shared Jinja environment (pyvis recompiles its template per Network)."""
    net.templateEnv = _template_env(net.template_dir)
    return net


def offline_document(net: Network, css: str, tail: str) -> str:
    """``net`` as one offline HTML document: CDN tags stripped, ``css`` in the head,
    ``tail`` (legend, scripts: trusted markup of ours) before ``</body>``.

    Raises:
        OfflineHTMLError: the result would still load something remote.
    """
    document = strip_cdn(net.generate_html())
    document = document.replace("</head>", f"<style>{css}</style>\n</head>", 1)
    head, sep, rest = document.rpartition("</body>")
    document = head + tail + sep + rest if sep else document + tail
    check_offline(document)
    return document


def session_graph_html(window: Sequence[GraphItem], next_item: GraphItem | None = None,
                       height_px: int = 460) -> str:
    """The complete, offline, escaped HTML document for a session window."""
    style = load_style()
    net = build_network(list(window), next_item, height_px, style)
    return offline_document(net, load_css(), legend_html(window, next_item, style) + graph_script())


def graph_nodes(document: str) -> list[dict[str, Any]]:
    """The node data embedded in a generated document (for tests and debugging)."""
    match = re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", document, re.DOTALL)
    if not match:
        raise ValueError("no node data in the graph HTML")
    return json.loads(match.group(1))
