"""Counterfactual edits of a reasoning graph: remove chains and nodes with what depended on them.

The explanation's measured path effects and the control model's input (a graph
with every chain, intent and candidate removed) come from :func:`remove`;
:func:`models.graph_data.counterfactual_pair` turns the result into tensors.
"""

from __future__ import annotations

from collections.abc import Collection

import networkx as nx

from reasoning.graph import EdgeKind, NodeKind
from reasoning.graph_nodes import (chain_records, edge_kind, graph_edges, intents, node_ids,
                                   node_kind)


def reasoning_elements(graph: nx.DiGraph) -> tuple[list[str], list[str]]:
    """Every chain id and every intent and candidate node id of ``graph``.

    Removing both (:func:`remove`) leaves the plain session: the control's input.
    """
    chains = sorted({e.chain for e in graph_edges(graph, EdgeKind.CHAIN) if e.chain is not None}
                    | {c.id for c in chain_records(graph)})
    nodes = sorted(node_ids(graph, NodeKind.INTENT, NodeKind.CANDIDATE_ITEM))
    return chains, nodes


def remove(graph: nx.DiGraph, chains: Collection[str] = (),
           nodes: Collection[str] = ()) -> nx.DiGraph:
    """A copy of ``graph`` without the given chains and nodes, and what depended on them.

    * a chain loses its chain edges and the intents proposed from it (intent
      nodes whose ``chain`` attribute names it); its session items stay;
    * a removed session item is bridged over: within each chain the edge into
      it and the edge out of it become one edge (the outgoing edge's
      attributes); the window order skips it (see the module docstring);
    * intents left with no incoming ``diverge`` edge, then candidates left with
      none, are removed: the LLM proposed them from what was removed.

    Args:
        graph: a reasoning graph; not modified.
        chains: chain ids (``c1``...).
        nodes: node ids of any kind (``s3``, ``dc1.2``, ``c42``).

    Raises:
        KeyError: a chain or node id that is not in the graph.
    """
    known_chains = reasoning_elements(graph)[0] if chains else []
    unknown = [c for c in chains if c not in known_chains] + [n for n in nodes if n not in graph]
    if unknown:
        raise KeyError(f"not in the graph: {', '.join(map(str, unknown))}")
    drop_chains = set(chains)
    # What goes regardless of order (the chains' edges and intents, removed intents and
    # candidates) is never copied; removed session items go one by one, bridged over.
    gone = {i.id for i in intents(graph) if i.chain in drop_chains}
    gone |= {n for n in nodes if node_kind(graph, n) != NodeKind.SESSION_ITEM}
    dropped_edges = {(e.source, e.target) for e in graph_edges(graph, EdgeKind.CHAIN)
                     if e.chain in drop_chains}
    out = _copy_without(graph, gone, dropped_edges)
    for node in nodes:
        if node not in out:   # gone with a removed chain, or not a session item
            continue
        _bridge_chains(out, node)
        out.remove_node(node)
    for kind in (NodeKind.INTENT, NodeKind.CANDIDATE_ITEM):
        orphans = [n for n in node_ids(out, kind)
                   if not any(edge_kind(out, p, n) == EdgeKind.DIVERGE for p in out.predecessors(n))]
        out.remove_nodes_from(orphans)
    out.graph["chains"] = [c for c in chain_records(out) if c.id not in drop_chains]
    return out


def _copy_without(graph: nx.DiGraph, nodes: set[str], edges: set[tuple[str, str]]) -> nx.DiGraph:
    """A copy of ``graph`` (own attribute dicts, same order) without ``nodes``, their edges
    and ``edges``: ``graph.copy()`` then removing them, without copying what goes."""
    out = graph.__class__()
    out.graph.update(graph.graph)
    out.add_nodes_from((n, attrs) for n, attrs in graph.nodes(data=True) if n not in nodes)
    out.add_edges_from((u, v, attrs) for u, v, attrs in graph.edges(data=True)
                       if u not in nodes and v not in nodes and (u, v) not in edges)
    return out


def _bridge_chains(graph: nx.DiGraph, node: str) -> None:
    chain_edges = graph_edges(graph, EdgeKind.CHAIN)
    incoming = [e for e in chain_edges if e.target == node]
    outgoing = [e for e in chain_edges if e.source == node]
    for e_in in incoming:
        for e_out in outgoing:
            u, v = e_in.source, e_out.target
            if e_in.chain == e_out.chain and u != node and v != node:
                # The bridge is the outgoing edge itself, moved back to ``u``.
                graph.add_edge(u, v, **graph.edges[node, v])
