"""Typed writers and readers of the reasoning graph's nodes and edges.

Every producer of a reasoning graph (the LLM builder, the LLM-free genre
stand-in, the tests' factories) adds nodes and edges through the writers here,
so ids, kinds, stages and attributes follow one convention:

* session items ``s<step>``, joined by ``sequence`` edges in window order and
  by ``chain`` edges from an item to the next item of its chain;
* intents ``d<chain>.<n>``, the n-th next intent proposed from a chain's end,
  joined to that end by a ``diverge`` edge;
* candidate items ``c<catalogue index>``, one node per item however many
  intents propose it, joined to each by a weighted ``diverge`` edge.

Readers return typed records (:class:`SessionItemNode`, :class:`IntentNode`,
:class:`CandidateNode`, :class:`GraphEdge`, the chains' :class:`ChainRecord`) and
enum kinds in place of attribute lookups by string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from reasoning.graph import (ChainRecord, ChainStatus, EdgeKind, GraphFormatError, NodeKind,
                             Stage)


def session_node(step: int) -> str:
    return f"s{step}"


def intent_node(chain: str, n: int) -> str:
    return f"d{chain}.{n}"


def candidate_node(index: int) -> str:
    return f"c{index}"


def _set(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}


def add_session_item(graph: nx.DiGraph, step: int, *, item_index: int, item_id: str,
                     title: str, intent: str, chain: str, reason: str,
                     score: float | None = None, status: ChainStatus | None = None) -> str:
    """The window item at ``step``, in ``chain`` (its id)."""
    node = session_node(step)
    graph.add_node(node, **_set(dict(kind=NodeKind.SESSION_ITEM, step=step, stage=Stage.CHAIN,
                                     item_index=item_index, item_id=item_id, title=title,
                                     intent=intent, chain=chain, reason=reason, score=score,
                                     status=status)))
    return node


def add_sequence_edge(graph: nx.DiGraph, step: int) -> None:
    """Window order: the item at ``step - 1`` to the item at ``step``.

    Add it before a chain edge between the same pair: a ``DiGraph`` holds one edge
    per pair, and a chain edge then stands for both (window order is rebuilt from
    the steps).
    """
    graph.add_edge(session_node(step - 1), session_node(step), kind=EdgeKind.SEQUENCE,
                   step=step, stage=Stage.CHAIN)


def add_chain_edge(graph: nx.DiGraph, previous_step: int, step: int, *, chain: str, intent: str,
                   reason: str, score: float | None = None,
                   status: ChainStatus | None = None) -> None:
    """``chain`` continues from the item at ``previous_step`` to the item at ``step``."""
    graph.add_edge(session_node(previous_step), session_node(step),
                   **_set(dict(kind=EdgeKind.CHAIN, step=step, stage=Stage.CHAIN, chain=chain,
                               intent=intent, reason=reason, score=score, status=status)))


def add_intent(graph: nx.DiGraph, *, chain: str, n: int, end_step: int, text: str,
               reason: str | None = None, edge_reason: str | None = None) -> str:
    """The ``n``-th next intent proposed from ``chain``'s end (at ``end_step``), with its
    ``diverge`` edge from that end; returns its id.

    Args:
        reason: why the intent was proposed (on the node).
        edge_reason: why it follows the chain (on the edge).
    """
    node = intent_node(chain, n)
    graph.add_node(node, **_set(dict(kind=NodeKind.INTENT, step=end_step, stage=Stage.DIVERGE,
                                     intent=text, chain=chain, reason=reason)))
    graph.add_edge(session_node(end_step), node, **_set(dict(
        kind=EdgeKind.DIVERGE, step=end_step, stage=Stage.DIVERGE, chain=chain, intent=text,
        reason=edge_reason)))
    return node


def add_candidate(graph: nx.DiGraph, intent: str, *, item_index: int, item_id: str,
                  title: str, weight: float | None = None, reason: str | None = None) -> str:
    """Catalogue item ``item_index`` as a candidate of the intent node ``intent``.

    One node per item: proposed again (by another intent, or from an earlier chain
    end) it keeps the earliest step and the highest weight, and gains another
    weighted edge.
    """
    proposer = graph.nodes[intent]
    step = proposer["step"]
    node = candidate_node(item_index)
    if node in graph:
        attrs = graph.nodes[node]
        attrs["step"] = min(attrs["step"], step)
        if weight is not None:
            attrs["weight"] = max(attrs.get("weight", weight), weight)
    else:
        graph.add_node(node, **_set(dict(kind=NodeKind.CANDIDATE_ITEM, step=step,
                                         stage=Stage.DIVERGE, item_index=item_index,
                                         item_id=item_id, title=title, weight=weight)))
    graph.add_edge(intent, node, **_set(dict(kind=EdgeKind.DIVERGE, step=step,
                                             stage=Stage.DIVERGE, chain=proposer["chain"],
                                             intent=proposer["intent"], weight=weight,
                                             reason=reason)))
    return node


def set_chain_verdict(graph: nx.DiGraph, chain: ChainRecord) -> None:
    """Stamp ``chain``'s score and status on its window items and chain edges, for a
    producer that verifies a chain after writing it."""
    for step in chain.steps:
        graph.nodes[session_node(step)].update(score=chain.score, status=chain.status)
    for previous, step in zip(chain.steps[:-1], chain.steps[1:]):
        graph.edges[session_node(previous), session_node(step)].update(score=chain.score,
                                                                      status=chain.status)


@dataclass(frozen=True)
class SessionItemNode:
    """A window item as the graph holds it."""

    id: str
    step: int
    item_index: int
    item_id: str
    title: str
    intent: str
    chain: str
    reason: str
    score: float | None
    status: ChainStatus | None


@dataclass(frozen=True)
class IntentNode:
    """A next intent proposed from a chain's end (``reason``: why, when the LLM said)."""

    id: str
    step: int
    chain: str
    text: str
    reason: str | None = None


@dataclass(frozen=True)
class CandidateNode:
    """A catalogue item an intent was localized to (``step``: the earliest proposal;
    ``weight``: the highest match weight over its proposals, None when unweighted)."""

    id: str
    step: int
    item_index: int
    item_id: str
    title: str
    weight: float | None = None


GraphNode = SessionItemNode | IntentNode | CandidateNode


@dataclass(frozen=True)
class GraphEdge:
    """An edge as the graph holds it; attributes its kind does not carry are None.

    ``chain`` edges carry the chain, its intent, the reason and the chain's score
    and status; ``diverge`` edges the chain and intent they extend and, into a
    candidate, the localizer's ``weight``; ``sequence`` edges only their step.
    """

    source: str
    target: str
    kind: EdgeKind
    step: int
    chain: str | None = None
    intent: str | None = None
    reason: str | None = None
    score: float | None = None
    status: ChainStatus | None = None
    weight: float | None = None


def _require(node: str, attrs: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if attrs.get(name) is None]
    if missing:
        raise GraphFormatError(f"{attrs.get('kind', 'graph')} node {node!r} has no "
                               f"{', '.join(missing)}")


def _session_item(node: str, a: dict[str, Any]) -> SessionItemNode:
    _require(node, a, "step", "item_index", "item_id", "title", "intent", "chain")
    return SessionItemNode(node, a["step"], a["item_index"], a["item_id"], a["title"],
                           a["intent"], a["chain"], a.get("reason", ""), a.get("score"),
                           a.get("status"))


def _intent(node: str, a: dict[str, Any]) -> IntentNode:
    _require(node, a, "step", "chain", "intent")
    return IntentNode(node, a["step"], a["chain"], a["intent"], a.get("reason"))


def _candidate(node: str, a: dict[str, Any]) -> CandidateNode:
    _require(node, a, "step", "item_index", "item_id", "title")
    return CandidateNode(node, a["step"], a["item_index"], a["item_id"], a["title"],
                         a.get("weight"))


_RECORDS = {NodeKind.SESSION_ITEM: _session_item, NodeKind.INTENT: _intent,
            NodeKind.CANDIDATE_ITEM: _candidate}


def _edge(source: str, target: str, a: dict[str, Any]) -> GraphEdge:
    return GraphEdge(source, target, EdgeKind(a["kind"]), a["step"], a.get("chain"),
                     a.get("intent"), a.get("reason"), a.get("score"), a.get("status"),
                     a.get("weight"))


def node_kind(graph: nx.DiGraph, node: str) -> NodeKind:
    """What ``node`` is."""
    return NodeKind(graph.nodes[node]["kind"])


def node_stage(graph: nx.DiGraph, node: str) -> Stage | None:
    """The build stage that added ``node`` (None when the graph does not say)."""
    stage = graph.nodes[node].get("stage")
    return None if stage is None else Stage(stage)


def edge_kind(graph: nx.DiGraph, source: str, target: str) -> EdgeKind:
    """What the edge ``source -> target`` is."""
    return EdgeKind(graph.edges[source, target]["kind"])


def node_ids(graph: nx.DiGraph, *kinds: NodeKind) -> list[str]:
    """The ids of the nodes of ``kinds``, in the graph's order."""
    return [n for n, a in graph.nodes(data=True) if a["kind"] in kinds]


def node_record(graph: nx.DiGraph, node: str) -> GraphNode:
    """``node`` as the typed record of its kind."""
    attrs = graph.nodes[node]
    return _RECORDS[NodeKind(attrs["kind"])](node, attrs)


def node_text(graph: nx.DiGraph, node: str) -> str:
    """A node in words: an intent's text or an item's title ("" when it has none)."""
    record = node_record(graph, node)
    return str((record.text if isinstance(record, IntentNode) else record.title) or "")


def node_chain(graph: nx.DiGraph, node: str) -> str | None:
    """The chain a window item belongs to or an intent extends (None for a candidate)."""
    record = node_record(graph, node)
    return None if isinstance(record, CandidateNode) else record.chain


def graph_edge(graph: nx.DiGraph, source: str, target: str) -> GraphEdge:
    """The edge ``source -> target`` as a typed record."""
    return _edge(source, target, graph.edges[source, target])


def graph_edges(graph: nx.DiGraph, *kinds: EdgeKind,
                chain: str | None = None) -> list[GraphEdge]:
    """The edges of ``kinds`` (every kind when none is given), of ``chain`` when it is
    given, in the graph's order."""
    return [_edge(u, v, a) for u, v, a in graph.edges(data=True)
            if (not kinds or a["kind"] in kinds) and (chain is None or a.get("chain") == chain)]


def session_items(graph: nx.DiGraph) -> list[SessionItemNode]:
    """The window items, in window order."""
    found = [_session_item(n, a) for n, a in graph.nodes(data=True)
             if a["kind"] == NodeKind.SESSION_ITEM]
    return sorted(found, key=lambda node: node.step)


def intents(graph: nx.DiGraph) -> list[IntentNode]:
    """The divergent intents, by step then id."""
    found = [_intent(n, a) for n, a in graph.nodes(data=True) if a["kind"] == NodeKind.INTENT]
    return sorted(found, key=lambda node: (node.step, node.id))


def candidates(graph: nx.DiGraph) -> list[CandidateNode]:
    """The candidate items, by step then catalogue index."""
    found = [_candidate(n, a) for n, a in graph.nodes(data=True)
             if a["kind"] == NodeKind.CANDIDATE_ITEM]
    return sorted(found, key=lambda node: (node.step, node.item_index))


def candidates_of(graph: nx.DiGraph, intent: str) -> list[tuple[CandidateNode, float | None]]:
    """The candidates the intent node ``intent`` was localized to, with their weights."""
    by_id = {c.id: c for c in candidates(graph)}
    return [(by_id[target], attrs.get("weight"))
            for _, target, attrs in graph.out_edges(intent, data=True) if target in by_id]


def candidate_of_item(graph: nx.DiGraph, item_index: int) -> CandidateNode | None:
    """The candidate node of catalogue item ``item_index``, if an intent proposed it."""
    return next((c for c in candidates(graph) if c.item_index == item_index), None)


def intent_anchors(graph: nx.DiGraph, intent: str) -> list[SessionItemNode]:
    """The window items the intent node ``intent`` was proposed from (its chain's end),
    in window order."""
    anchors = set(graph.predecessors(intent))
    return [item for item in session_items(graph) if item.id in anchors]


def chain_records(graph: nx.DiGraph) -> list[ChainRecord]:
    """The graph's chain records, in its order (plain dicts from JSON are validated)."""
    return [c if isinstance(c, ChainRecord) else ChainRecord.model_validate(c)
            for c in graph.graph.get("chains", [])]


def chain_items(graph: nx.DiGraph, chain: str, up_to: int | None = None) -> list[SessionItemNode]:
    """The window items of ``chain`` (up to window step ``up_to``), in window order."""
    return [item for item in session_items(graph)
            if item.chain == chain and (up_to is None or item.step <= up_to)]


def chain_status(graph: nx.DiGraph, chain: str) -> ChainStatus | None:
    """The chain's verification status: its record's, else its items', else None."""
    record = next((c for c in chain_records(graph) if c.id == chain), None)
    if record is not None:
        return record.status
    return next((item.status for item in chain_items(graph, chain) if item.status), None)
