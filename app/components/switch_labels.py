"""Plain labels of the Recommendations page's counterfactual switches: chains, interests and
suggested films, watched films (graph ids stay the options' values, never their labels)."""

from __future__ import annotations

from typing import Any

from app.components.explanation_view import chain_name
from reasonrec.reasoning_api import EdgeKind, NodeKind


def chain_labels(prefix: Any, chains: list[str]) -> dict[str, str]:
    """Chain id -> "Chain 1: intent" (plus "did not pass the check" when rejected)."""
    labels = {}
    records = {getattr(c, "id", None): c for c in prefix.graph.get("chains", [])}
    for chain in chains:
        record = records.get(chain)
        edge = next((a for _, _, a in prefix.edges(data=True) if a.get("chain") == chain
                     and a.get("kind") == EdgeKind.CHAIN), {})
        intent = getattr(record, "intent", None) or edge.get("intent") or "no stated intent"
        status = getattr(record, "status", None) or edge.get("status")
        # short: multiselect pills cut long labels
        labels[chain] = (f"{chain_name(chain, chains).capitalize()}: {intent}"
                         + (" (did not pass the check)" if status == "rejected" else ""))
    return labels


def node_labels(prefix: Any, nodes: list[str], chains: list[str]) -> dict[str, str]:
    """Interest or suggested-film node id -> "Interest: romance (chain 1)" / "Suggested: Title"."""
    out = {}
    for n in nodes:
        a = prefix.nodes[n]
        out[n] = (f"Interest: {a.get('intent')} ({chain_name(a.get('chain'), chains)})"
                  if a["kind"] == NodeKind.INTENT else f"Suggested: {a.get('title')}")
    return out


def window_items(prefix: Any, offset: int) -> dict[str, str]:
    """Session item id -> "film 23: title" (its place in the whole history)."""
    out: dict[str, str] = {}
    for _, a in sorted(((n, a) for n, a in prefix.nodes(data=True)
                        if a["kind"] == NodeKind.SESSION_ITEM), key=lambda t: t[1]["step"]):
        out.setdefault(str(a["item_id"]), f"film {offset + a['step'] + 1}: {a.get('title')}")
    return out
