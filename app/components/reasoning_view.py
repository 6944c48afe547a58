"""The reasoning graph as an offline, escaped vis-network page, plus node details (views only).

Reads a ``reasoning.graph`` ``DiGraph`` (see ``reasoning/graph.py`` and
``reasoning/builder.py``) and draws it; nothing here computes a recommendation.

* **Layout.** Session items sit on one row in time order (left to right); the
  intents proposed from a chain's end sit on a row below, the catalogue items
  they were localized to in a column under each intent, and the true next item
  (never seen by the models) above the end of the session row.
* **Encoding.** Chain edges carry their reason in their tooltip; the chain's
  verification score sets the edge width and its colour (red 0 -> green 1,
  grey when unverified); rejected chains are dashed and hidden unless asked
  for. Intents are orange diamonds, candidate items purple boxes.
* **Security.** Titles and every LLM text (intent, reason) are untrusted.
  Canvas labels are plain text; tooltips and the details panel are HTML built
  from ``html.escape``d pieces only; pyvis serialises node data with
  ``tojson`` so nothing can close the ``<script>`` block.
* **Clicks.** A small script posts ``{type: "rr-node-click", id}`` to the
  parent window when a node is clicked, and selects the node the parent asks
  for (``{type: "rr-select", id}``); :mod:`app.components.graph_select` turns
  that into a Streamlit value.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
from pyvis.network import Network

from app.graph_html import (NEVER_SEEN, graph_script, load_css, offline_document,
                            share_template, short_label)
from reasonrec.reasoning_api import (CandidateNode, ChainStatus, EdgeKind, IntentNode, NodeKind,
                                     SessionItemNode, chain_records, graph_edges, node_chain,
                                     node_kind, node_record, node_stage, session_items)

TARGET_ID = "target"
X_STEP = 190            # px between session items (a label's width at the fitted zoom)
INTENT_Y = 150
CANDIDATE_Y = 230       # first candidate under its intent
INTENT_GAP = 200        # px between intents (a candidate box fits)
CANDIDATE_GAP = 44      # px between the candidates stacked under one intent
TARGET_Y = -110         # the true next item sits above the session row
LABEL_CHARS = 16
CANDIDATE_CHARS = 15

LOW_SCORE = (214, 39, 40)      # #d62728: score 0
HIGH_SCORE = (44, 160, 44)     # #2ca02c: score 1
UNSCORED = "#9e9e9e"
SEQUENCE_COLOUR = "#b8b8b8"
INTENT_COLOUR = "#ff7f0e"
CANDIDATE_COLOUR = "#ecdff7"
CANDIDATE_BORDER = "#9467bd"
TARGET_COLOUR = "#d62728"
REJECTED_ITEM = "#d9d9d9"
CHAIN_PALETTE = ("#1f77b4", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#7f7f7f",
                 "#aec7e8", "#98df8a", "#c49c94", "#f7b6d2")

KIND_LABELS = {NodeKind.SESSION_ITEM: "session item", NodeKind.INTENT: "divergent intent",
               NodeKind.CANDIDATE_ITEM: "divergent candidate item", TARGET_ID: "true next item"}

ItemLookup = Callable[[int], Any]   # catalogue index -> models.data.Item


@dataclass(frozen=True)
class EdgeStyle:
    """How one edge is drawn."""

    colour: str
    width: float
    dashes: bool


def score_colour(score: float | None) -> str:
    """Red (0) to green (1) through the verification score; grey when unscored."""
    if score is None or not math.isfinite(score):
        return UNSCORED
    t = min(1.0, max(0.0, float(score)))
    rgb = (round(lo + (hi - lo) * t) for lo, hi in zip(LOW_SCORE, HIGH_SCORE))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def chain_edge_style(score: float | None, status: ChainStatus | None) -> EdgeStyle:
    """A chain edge: width and colour from its chain's score, dashed when rejected."""
    if score is None or not math.isfinite(score):
        width = 1.5
    else:
        width = 1.0 + 6.0 * min(1.0, max(0.0, float(score)))
    return EdgeStyle(score_colour(score), round(width, 2), status == ChainStatus.REJECTED)


def chain_colour(chain: str | None, chains: list[str]) -> str:
    if chain is None or chain not in chains:
        return UNSCORED
    return CHAIN_PALETTE[chains.index(chain) % len(CHAIN_PALETTE)]


def fmt_score(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) else "—"


def _tip(rows: list[tuple[str, Any]], title: str) -> str:
    """Tooltip HTML: a bold title and ``label: value`` lines, every value escaped."""
    e = html.escape
    lines = [f'<div class="rr-tip-title">{e(title)}</div>']
    lines += [f'<div class="rr-tip-meta"><b>{e(label)}</b>: {e(str(value))}</div>'
              for label, value in rows if value not in (None, "")]
    return "".join(lines)


def hidden_chains(graph: nx.DiGraph, show_rejected: bool) -> set[str]:
    """Chains not drawn: the rejected ones, unless ``show_rejected``."""
    if show_rejected:
        return set()
    return {c.id for c in chain_records(graph) if c.status == ChainStatus.REJECTED}


def visible_nodes(graph: nx.DiGraph, show_rejected: bool) -> list[str]:
    """Node ids drawn: every session item; intents and candidates of drawn chains only."""
    hidden = hidden_chains(graph, show_rejected)
    keep = []
    for node in graph.nodes:
        kind = node_kind(graph, node)
        if kind == NodeKind.INTENT and node_chain(graph, node) in hidden:
            continue
        if kind == NodeKind.CANDIDATE_ITEM:
            proposers = list(graph.predecessors(node))
            if proposers and all(node_chain(graph, u) in hidden for u in proposers):
                continue
        keep.append(node)
    return keep


def _positions(graph: nx.DiGraph, nodes: list[str]) -> dict[str, tuple[int, int]]:
    """Session row in time order; each chain end's intents on a row below it, and each
    intent's candidate items in a column under the intent (a compact, readable shape)."""
    records = [node_record(graph, n) for n in nodes]
    pos: dict[str, tuple[int, int]] = {}
    for record in records:
        if isinstance(record, SessionItemNode):
            pos[record.id] = (record.step * X_STEP, 0)
    intents = sorted((r for r in records if isinstance(r, IntentNode)),
                     key=lambda r: (r.step, r.id))
    last_x = -10 ** 6
    for intent in intents:
        siblings = [other.id for other in intents if other.chain == intent.chain]
        offset = (siblings.index(intent.id) - (len(siblings) - 1) / 2) * INTENT_GAP
        x = max(int(intent.step * X_STEP + offset), last_x + INTENT_GAP)
        pos[intent.id] = (x, INTENT_Y)
        last_x = x
    placed: set[str] = set()
    drawn = set(nodes)
    for intent in intents:
        row = 0
        for candidate in sorted(graph.successors(intent.id)):
            if candidate in placed or candidate not in drawn:
                continue
            placed.add(candidate)
            pos[candidate] = (pos[intent.id][0], CANDIDATE_Y + row * CANDIDATE_GAP)
            row += 1
    for record in records:   # candidates with no drawn intent (not made by the builder)
        if isinstance(record, CandidateNode) and record.id not in pos:
            pos[record.id] = (record.step * X_STEP, CANDIDATE_Y)
    return pos


def chain_words(chain: Any) -> str | None:
    """A chain id in words ("chain 3"), never the raw id."""
    if chain is None:
        return None
    number = re.fullmatch(r"c(\d+)", str(chain))
    return f"chain {number.group(1)}" if number else "a chain"


def _node_tooltip(graph: nx.DiGraph, node: str, lookup: ItemLookup | None) -> str:
    record = node_record(graph, node)
    kind = node_kind(graph, node)
    where = f"window step {record.step + 1} · stage {node_stage(graph, node) or '?'}"
    if isinstance(record, IntentNode):
        return _tip([("kind", KIND_LABELS[kind]), ("chain", chain_words(record.chain)),
                     ("where", where)], record.text or "intent")
    rows: list[tuple[str, Any]] = [("kind", KIND_LABELS[kind]), ("film id", record.item_id),
                                   ("where", where)]
    rows += catalogue_rows(record.item_index, lookup)
    if isinstance(record, SessionItemNode):
        rows += [("chain", chain_words(record.chain)), ("intent", record.intent),
                 ("reason", record.reason),
                 ("chain score", f"{fmt_score(record.score)} ({record.status or '?'})")]
    else:
        rows += [("match weight", fmt_score(record.weight))]
    return _tip(rows, record.title or "untitled")


def catalogue_rows(index: Any, lookup: ItemLookup | None) -> list[tuple[str, Any]]:
    if lookup is None or index is None:
        return []
    try:
        item = lookup(int(index))
    except (IndexError, KeyError, ValueError, TypeError):
        return [("catalogue", f"index {index} is not in this catalogue")]
    year = item.year if item.year is not None else "year unknown"
    return [("catalogue", f"{year} · {', '.join(item.genres) or 'no genres'}")]


def true_next_item(graph: nx.DiGraph, lookup: ItemLookup | None) -> Any | None:
    index = graph.graph.get("target")
    if index is None or lookup is None:
        return None
    try:
        return lookup(int(index))
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def build_network(graph: nx.DiGraph, *, show_rejected: bool = False, height_px: int = 520,
                  lookup: ItemLookup | None = None, show_target: bool = True) -> Network:
    """The pyvis network of a reasoning graph (see the module docstring for the encoding)."""
    net = share_template(Network(height=f"{int(height_px)}px", width="100%", directed=True,
                                 bgcolor="#ffffff", font_color="#262730", cdn_resources="in_line"))
    nodes = visible_nodes(graph, show_rejected)
    drawn = set(nodes)
    hidden = hidden_chains(graph, show_rejected)
    chains = sorted({item.chain for item in session_items(graph) if item.chain}, key=str)
    pos = _positions(graph, nodes)
    target = true_next_item(graph, lookup) if show_target else None
    records = {node: node_record(graph, node) for node in nodes}
    for node, record in records.items():
        x, y = pos[node]
        common = dict(x=x, y=y, tooltip_html=_node_tooltip(graph, node, lookup),
                      kind=node_kind(graph, node))
        if isinstance(record, SessionItemNode):
            colour = chain_colour(record.chain, chains)
            rejected = record.status == ChainStatus.REJECTED
            net.add_node(node, label=f"{record.step + 1}. {short_label(record.title or '', LABEL_CHARS)}",
                         shape="dot", size=16, borderWidth=3,
                         color={"background": REJECTED_ITEM if rejected else colour, "border": colour,
                                "highlight": {"background": colour, "border": "#000000"}},
                         **common)
        elif isinstance(record, IntentNode):
            net.add_node(node, label=short_label(record.text or "intent", LABEL_CHARS),
                         shape="diamond", size=14, color=INTENT_COLOUR, **common)
        else:
            hit = target is not None and record.item_index == target.index
            net.add_node(node, label=("★ " if hit else "") + short_label(record.title or "",
                                                                         CANDIDATE_CHARS),
                         shape="box", borderWidth=3 if hit else 1,
                         color={"background": CANDIDATE_COLOUR,
                                "border": TARGET_COLOUR if hit else CANDIDATE_BORDER},
                         **common)
    for edge in graph_edges(graph):
        u, v = edge.source, edge.target
        if u not in drawn or v not in drawn:
            continue
        span = records[v].step - records[u].step
        if edge.kind == EdgeKind.CHAIN and edge.chain in hidden:
            # A hidden chain edge between neighbours also stood for their sequence edge.
            if span == 1:
                net.add_edge(u, v, color=SEQUENCE_COLOUR, width=1, dashes=True,
                             kind=EdgeKind.SEQUENCE)
            continue
        if edge.kind == EdgeKind.SEQUENCE:
            net.add_edge(u, v, color=SEQUENCE_COLOUR, width=1, dashes=True, kind=edge.kind)
        elif edge.kind == EdgeKind.CHAIN:
            style = chain_edge_style(edge.score, edge.status)
            net.add_edge(
                u, v, kind=edge.kind, color=style.colour, width=style.width, dashes=style.dashes,
                # no canvas label: long reasons on arcs overlap at the fitted zoom; the
                # reason is in the edge's tooltip and the details panel
                smooth={"enabled": True, "type": "curvedCW", "roundness": min(0.5, 0.15 * span)},
                tooltip_html=_tip([("chain", chain_words(edge.chain)),
                                   ("intent", edge.intent),
                                   ("reason", edge.reason),
                                   ("score", f"{fmt_score(edge.score)} ({edge.status or '?'})")],
                                  "chain edge"))
        else:  # diverge
            weight = edge.weight
            width = 1.0 + 4.0 * float(weight) if isinstance(weight, (int, float)) else 1.5
            net.add_edge(u, v, kind=edge.kind, color=INTENT_COLOUR if weight is None else CANDIDATE_BORDER,
                         width=round(width, 2), dashes=weight is None,
                         tooltip_html=_tip([("chain", chain_words(edge.chain)),
                                            ("intent", edge.intent),
                                            ("match weight", fmt_score(weight))], "divergent edge"))
    if target is not None:
        last = max((r for r in records.values() if isinstance(r, SessionItemNode)),
                   key=lambda r: r.step, default=None)
        end = -1 if last is None else last.step
        net.add_node(TARGET_ID, label=f"NEXT ({NEVER_SEEN})\n{short_label(target.title, LABEL_CHARS)}",
                     # Above the row, past its end: its wide box never covers a session item.
                     shape="box", x=(end + 1) * X_STEP + X_STEP // 2, y=TARGET_Y, kind=TARGET_ID,
                     color={"background": "#ffffff", "border": TARGET_COLOUR},
                     borderWidth=2, shapeProperties={"borderDashes": [5, 5]},
                     tooltip_html=_tip([("item", target.item_id),
                                        *catalogue_rows(target.index, lookup),
                                        ("note", f"{NEVER_SEEN.capitalize()}: shown for error "
                                                 "analysis only")], target.title))
        if last is not None:
            net.add_edge(last.id, TARGET_ID, color=TARGET_COLOUR, dashes=True, width=1.5,
                         kind="target")
    net.options = {
        "physics": {"enabled": False},
        "interaction": {"dragNodes": True, "dragView": True, "zoomView": True, "hover": True,
                        "tooltipDelay": 100, "selectConnectedEdges": False},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}},
                  "smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.1}},
        # Large fonts: the fitted view of a 10-item window is scaled to about half size.
        "nodes": {"font": {"size": 18, "face": "sans-serif", "color": "#262730"}},
    }
    return net


# After the shared graph script: edge tooltips too, clicks go to the parent page,
# and the parent can select a node. Only ids of our own (s3, dc1.2, c491, target)
# cross the frame boundary.
_GRAPH_SCRIPT = graph_script("""
  tips(edges);
  window.rrClicks = [];
  network.on("click", function (params) {
    if (!params.nodes || !params.nodes.length) { return; }
    var id = String(params.nodes[0]);
    window.rrClicks.push(id);
    if (window.parent && window.parent !== window) {
      window.parent.postMessage({type: "rr-node-click", id: id}, "*");
    }
  });
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }
    var message = event.data || {};
    if (message.type !== "rr-select") { return; }
    if (typeof message.id === "string" && nodes.get(message.id)) {
      network.selectNodes([message.id], false);
    } else {
      network.unselectAll();
    }
  });
  if (window.parent && window.parent !== window) {
    window.parent.postMessage({type: "rr-graph-ready"}, "*");
  }
""")

_LEGEND = ('<div class="rr-legend" id="rr-legend">'
           '<span><span class="rr-swatch" style="background:#1f77b4"></span>session item '
           '(colour = chain; grey fill = rejected chain)</span>'
           f'<span><span class="rr-swatch rr-diamond" style="background:{INTENT_COLOUR}"></span>'
           'divergent intent</span>'
           f'<span><span class="rr-swatch rr-box" style="background:{CANDIDATE_COLOUR};'
           f'border:1px solid {CANDIDATE_BORDER}"></span>divergent candidate (★ = the true next '
           'item)</span>'
           f'<span><span class="rr-bar" style="background:linear-gradient(90deg,'
           f'{score_colour(0)},{score_colour(1)})"></span>chain score 0 → 1 (width too; '
           'dashed = rejected)</span>'
           f'<span><span class="rr-swatch rr-next-swatch"></span>true next item '
           f'({NEVER_SEEN})</span></div>')

_EXTRA_CSS = """
.rr-legend .rr-diamond { border-radius: 0; transform: rotate(45deg); width: 8px; height: 8px; }
.rr-legend .rr-box { border-radius: 2px; }
.rr-legend .rr-bar { display: inline-block; width: 36px; height: 6px; margin-right: 4px;
  vertical-align: middle; }
"""


def reasoning_graph_html(graph: nx.DiGraph, *, show_rejected: bool = False, height_px: int = 520,
                         lookup: ItemLookup | None = None, show_target: bool = True) -> str:
    """The complete, offline, escaped HTML document of a reasoning graph."""
    net = build_network(graph, show_rejected=show_rejected, height_px=height_px, lookup=lookup,
                        show_target=show_target)
    return offline_document(net, load_css() + _EXTRA_CSS, _LEGEND + _GRAPH_SCRIPT)


# ------------------------------------------------------------------- details
