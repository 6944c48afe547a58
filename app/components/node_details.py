"""The clicked node's details panel of the reasoning graph (views only).

Rows of plain words for a session item, an interest, a suggested film or the
true next film, and their escaped HTML; see :mod:`app.components.reasoning_view`
for the graph itself.
"""

from __future__ import annotations

import html

import networkx as nx

from app.components.reasoning_view import (KIND_LABELS, TARGET_ID, ItemLookup, catalogue_rows,
                                           chain_words, fmt_score, true_next_item)
from app.graph_html import NEVER_SEEN, short_label
from reasonrec.reasoning_api import (ChainStatus, EdgeKind, IntentNode, SessionItemNode,
                                     candidates_of, chain_records, graph_edge, node_kind,
                                     node_record, node_stage)


def node_label(graph: nx.DiGraph, node: str) -> str:
    """A one-line plain-text name for a node (for a select box; never HTML)."""
    if node == TARGET_ID:
        return f"true next item ({NEVER_SEEN})"
    record = node_record(graph, node)
    if isinstance(record, SessionItemNode):
        return f"step {record.step + 1}: {short_label(record.title or '', 48)}"
    if isinstance(record, IntentNode):
        return f"interest ({chain_words(record.chain)}): {short_label(record.text or '', 48)}"
    return f"candidate: {short_label(record.title or '', 48)}"


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
    record = node_record(graph, node)
    window = len(graph.graph.get("window") or [])
    rows: list[tuple[str, str]] = [("kind", KIND_LABELS[node_kind(graph, node)])]
    if not isinstance(record, IntentNode):
        rows.append(("title", str(record.title or "untitled")))
        rows.append(("catalogue item", f"film id {record.item_id}"))
        rows += [(k, str(v)) for k, v in catalogue_rows(record.item_index, lookup)]
    step = record.step + 1
    rows.append(("step", f"{step} of {window}" if window else str(step)))
    rows.append(("source stage", str(node_stage(graph, node) or "?")))
    if isinstance(record, SessionItemNode):
        rows += [("chain", str(chain_words(record.chain))),
                 ("intent", str(record.intent or "")),
                 ("reason", str(record.reason or "")),
                 ("chain score", fmt_score(record.score)),
                 ("chain status", str(record.status or ChainStatus.UNVERIFIED))]
        rows += _chain_neighbours(graph, node)
    elif isinstance(record, IntentNode):
        rows += [("intent", str(record.text or "")),
                 ("from chain", str(chain_words(record.chain)))]
        chain = next((c for c in chain_records(graph) if c.id == record.chain), None)
        if chain is not None:
            rows += [("chain score", fmt_score(chain.score)), ("chain status", str(chain.status))]
        items = [candidate.title or candidate.id for candidate, _ in candidates_of(graph, node)]
        rows.append(("localized to", "; ".join(items) or "no catalogue item"))
    else:
        rows.append(("match weight", fmt_score(record.weight)))
        proposers = [node_record(graph, u) for u in graph.predecessors(node)]
        rows.append(("from intents", "; ".join(p.text or p.id for p in proposers
                                               if isinstance(p, IntentNode))))
        target = graph.graph.get("target")
        if target is not None and record.item_index == target:
            rows.append(("note", "this candidate is the true next item"))
    return rows


def _chain_neighbours(graph: nx.DiGraph, node: str) -> list[tuple[str, str]]:
    """The chain edges into and out of a session item, with their reasons."""
    into = [graph_edge(graph, u, node) for u in graph.predecessors(node)]
    out_of = [graph_edge(graph, node, v) for v in graph.successors(node)]
    return ([("continues", f"{node_label(graph, e.source)} — because: {e.reason or ''}")
             for e in into if e.kind == EdgeKind.CHAIN]
            + [("continued by", f"{node_label(graph, e.target)} — because: {e.reason or ''}")
               for e in out_of if e.kind == EdgeKind.CHAIN])


def details_html(rows: list[tuple[str, str]]) -> str:
    """The details panel as escaped HTML (a definition list)."""
    e = html.escape
    body = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return f'{_DETAILS_CSS}<dl class="rr-details">{body}</dl>'


_DETAILS_CSS = ("<style>.rr-details{display:grid;grid-template-columns:max-content 1fr;"
                "gap:2px 12px;margin:0;font-size:0.95rem}.rr-details dt{font-weight:600;"
                "color:#555}.rr-details dd{margin:0;overflow-wrap:anywhere}</style>")


# --------------------------------------------------------------- build facts
