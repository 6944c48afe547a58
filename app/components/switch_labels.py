"""Plain labels of the Recommendations page's counterfactual switches: chains, interests and
suggested films, watched films (graph ids stay the options' values, never their labels)."""

from __future__ import annotations

import networkx as nx

from app.components.explanation_view import chain_name
from reasonrec.reasoning_api import (ChainStatus, EdgeKind, IntentNode, chain_records,
                                     graph_edges, node_record, session_items)


def chain_labels(prefix: nx.DiGraph, chains: list[str]) -> dict[str, str]:
    """Chain id -> "Chain 1: intent" (plus "did not pass the check" when rejected)."""
    labels = {}
    records = {c.id: c for c in chain_records(prefix)}
    for chain in chains:
        record = records.get(chain)
        edge = next(iter(graph_edges(prefix, EdgeKind.CHAIN, chain=chain)), None)
        intent = ((record.intent if record else None) or (edge.intent if edge else None)
                  or "no stated intent")
        status = (record.status if record else None) or (edge.status if edge else None)
        # short: multiselect pills cut long labels
        labels[chain] = (f"{chain_name(chain, chains).capitalize()}: {intent}"
                         + (" (did not pass the check)" if status == ChainStatus.REJECTED else ""))
    return labels


def node_labels(prefix: nx.DiGraph, nodes: list[str], chains: list[str]) -> dict[str, str]:
    """Interest or suggested-film node id -> "Interest: romance (chain 1)" / "Suggested: Title"."""
    out = {}
    for n in nodes:
        record = node_record(prefix, n)
        out[n] = (f"Interest: {record.text} ({chain_name(record.chain, chains)})"
                  if isinstance(record, IntentNode) else f"Suggested: {record.title}")
    return out


def window_items(prefix: nx.DiGraph, offset: int) -> dict[str, str]:
    """Session item id -> "film 23: title" (its place in the whole history)."""
    out: dict[str, str] = {}
    for item in session_items(prefix):
        out.setdefault(str(item.item_id), f"film {offset + item.step + 1}: {item.title}")
    return out
