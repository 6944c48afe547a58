"""The clicked node's details panel of the reasoning graph (views only).

Rows of plain words for a session item, an interest, a suggested film or the
true next film, and their escaped HTML; see :mod:`app.components.reasoning_view`
for the graph itself.
"""

from __future__ import annotations

import html
from typing import Any

import networkx as nx

from app.components.reasoning_view import (KIND_LABELS, TARGET_ID, ItemLookup, catalogue_rows,
                                           chain_words, fmt_score, true_next_item)
from app.graph_html import NEVER_SEEN, short_label
from reasonrec.reasoning_api import EdgeKind, NodeKind


def node_label(graph: nx.DiGraph, node: str) -> str:
    """A one-line plain-text name for a node (for a select box; never HTML)."""
    if node == TARGET_ID:
        return f"true next item ({NEVER_SEEN})"
    attrs = graph.nodes[node]
    kind = attrs["kind"]
    if kind == NodeKind.SESSION_ITEM:
        return f"step {attrs['step'] + 1}: {short_label(attrs.get('title') or '', 48)}"
    if kind == NodeKind.INTENT:
        return (f"interest ({chain_words(attrs.get('chain'))}): "
                f"{short_label(attrs.get('intent') or '', 48)}")
    return f"candidate: {short_label(attrs.get('title') or '', 48)}"


def node_details(graph: nx.DiGraph, node: str, lookup: ItemLookup | None = None
                 ) -> list[tuple[str, str]]:
    """``(field, value)`` rows about one node: reason, score, step, source stage, item.

    Values are plain text (untrusted); render them escaped.

    Raises:
        KeyError: ``node`` is not in the graph.
    """
    if node == TARGET_ID:
        item = true_next_item(graph, lookup)
        if item is None:
            raise KeyError(node)
        return [("kind", KIND_LABELS[TARGET_ID]), ("title", item.title),
                ("catalogue item", f"id {item.item_id}"), *catalogue_rows(item.index, lookup),
                ("note", f"{NEVER_SEEN.capitalize()}: shown for error analysis only.")]
    attrs = graph.nodes[node]
    kind = attrs["kind"]
    window = len(graph.graph.get("window") or [])
    rows: list[tuple[str, str]] = [("kind", KIND_LABELS.get(kind, kind))]
    if kind in ("session_item", "candidate_item"):
        rows.append(("title", str(attrs.get("title") or "untitled")))
        rows.append(("catalogue item", f"film id {attrs.get('item_id')}"))
        rows += [(k, str(v)) for k, v in catalogue_rows(attrs.get("item_index"), lookup)]
    step = attrs["step"] + 1
    rows.append(("step", f"{step} of {window}" if window else str(step)))
    rows.append(("source stage", str(attrs.get("stage", "?"))))
    if kind == NodeKind.SESSION_ITEM:
        rows += [("chain", str(chain_words(attrs.get("chain")))),
                 ("intent", str(attrs.get("intent") or "")),
                 ("reason", str(attrs.get("reason") or "")),
                 ("chain score", fmt_score(attrs.get("score"))),
                 ("chain status", str(attrs.get("status") or "unverified"))]
        rows += _chain_neighbours(graph, node)
    elif kind == NodeKind.INTENT:
        rows += [("intent", str(attrs.get("intent") or "")),
                 ("from chain", str(chain_words(attrs.get("chain"))))]
        chain = _chain(graph, attrs.get("chain"))
        if chain is not None:
            rows += [("chain score", fmt_score(chain.score)), ("chain status", str(chain.status))]
        items = [graph.nodes[v].get("title") or v for _, v in graph.out_edges(node)]
        rows.append(("localized to", "; ".join(str(t) for t in items) or "no catalogue item"))
    else:
        rows.append(("match weight", fmt_score(attrs.get("weight"))))
        intents = [graph.nodes[u].get("intent") or u for u, _ in graph.in_edges(node)]
        rows.append(("from intents", "; ".join(str(t) for t in intents)))
        target = graph.graph.get("target")
        if target is not None and attrs.get("item_index") == target:
            rows.append(("note", "this candidate is the true next item"))
    return rows


def _chain(graph: nx.DiGraph, chain_id: Any) -> Any | None:
    return next((c for c in graph.graph.get("chains", []) if c.id == chain_id), None)


def _chain_neighbours(graph: nx.DiGraph, node: str) -> list[tuple[str, str]]:
    """The chain edges into and out of a session item, with their reasons."""
    rows = []
    for u, _, a in graph.in_edges(node, data=True):
        if a["kind"] == EdgeKind.CHAIN:
            rows.append(("continues", f"{node_label(graph, u)} — because: {a.get('reason') or ''}"))
    for _, v, a in graph.out_edges(node, data=True):
        if a["kind"] == EdgeKind.CHAIN:
            rows.append(("continued by", f"{node_label(graph, v)} — because: {a.get('reason') or ''}"))
    return rows


def details_html(rows: list[tuple[str, str]]) -> str:
    """The details panel as escaped HTML (a definition list)."""
    e = html.escape
    body = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return f'{_DETAILS_CSS}<dl class="rr-details">{body}</dl>'


_DETAILS_CSS = ("<style>.rr-details{display:grid;grid-template-columns:max-content 1fr;"
                "gap:2px 12px;margin:0;font-size:0.95rem}.rr-details dt{font-weight:600;"
                "color:#555}.rr-details dd{margin:0;overflow-wrap:anywhere}</style>")


# --------------------------------------------------------------- build facts
