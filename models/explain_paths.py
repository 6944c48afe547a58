"""Explanation paths that reach the recommended item (#18).

For one item at one point of a user's window, every reasoning chain and every
divergent interest of the prefix graph gives one candidate path:

* a **chain path**: the chain's history items -> the item, where the last hop
  is co-watch support or shared genres between the chain's items and the item
  (:func:`models.evidence.chain_facts`); removing it removes the whole chain
  (its edges and the interests proposed from it), "without that chain";
* an **interest path**: the chain's items up to its end -> the divergent
  interest -> the item, where the last hop is the graph builder's own match of
  the interest to the item or the text encoder's similarity
  (:func:`models.evidence.interest_facts`); removing it removes the interest
  (and candidates only it proposed).

A path with no such fact does not reach the item: it keeps ``ends_at =
chain_end`` and the ``no_evidence`` flag. Nothing here ever ends a path at a
candidate merely *near* the item. The effects are measured by the caller
(``models.explain.Explainer.explain_item``), which ranks the paths by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from models.data import Catalogue
from models.evidence import CoWatchIndex, InterestSimilarity, chain_facts, interest_facts
from models.explain_schema import (Effect, EvidenceFact, ExplanationPath, PathEdge, PathEnd,
                                   PathFlag, PathKind, PathNode, PathRemoval)
from models.explain_effect import has_no_effect, works_against
from models.explain_removal import Removal
from reasoning.graph import ChainStatus, EdgeKind, NodeKind
from reasoning.graph_nodes import (IntentNode, candidate_of_item, chain_items, chain_status,
                                   graph_edge, graph_edges, intent_anchors, intents, node_kind,
                                   node_record, node_text)


@dataclass
class CandidatePath:
    """A path before its effect is measured.

    Attributes:
        id: ``c1`` for a chain path, ``c1>dc1.2`` for an interest path.
        nodes: graph node ids from the first history item to the last node
            before the item (chain end or interest).
        edges: the graph's chain and diverge edges along it.
        item_node: the item's node id (its candidate node when the graph has one).
        removal: what removing the path takes out.
        evidence: the facts linking the last node to the item.
        rejected: the chain failed verification.
        similarity: the interest's encoder similarity to the item (interest paths).
    """

    id: str
    kind: PathKind
    chain: str | None
    nodes: list[str]
    edges: list[tuple[str, str]]
    item_node: str
    removal: Removal
    evidence: list[EvidenceFact] = field(default_factory=list)
    rejected: bool = False
    similarity: float | None = None

    @property
    def reaches_item(self) -> bool:
        return bool(self.evidence)


def _chain_items(prefix: nx.DiGraph, chain: str, up_to: int | None = None) -> list[str]:
    """The chain's session nodes (up to window step ``up_to``), in window order."""
    return [item.id for item in chain_items(prefix, chain, up_to)]


def _chain_edges(prefix: nx.DiGraph, chain: str, nodes: list[str]) -> list[tuple[str, str]]:
    members = set(nodes)
    return [(e.source, e.target) for e in graph_edges(prefix, EdgeKind.CHAIN, chain=chain)
            if e.source in members and e.target in members]


def candidate_paths(prefix: nx.DiGraph, item: int, catalogue: Catalogue,
                    co_watch: CoWatchIndex, similarity: InterestSimilarity | None,
                    chains: list[str]) -> list[CandidatePath]:
    """One chain path per chain and one interest path per interest of ``prefix``, with facts.

    Args:
        prefix: the prefix graph at the point.
        item: the explained item's catalogue index.
        catalogue: titles and genres.
        co_watch: training co-watch counts.
        similarity: the localizer (``encoder_scores``), or None for no encoder facts.
        chains: the chain ids at the point (``reasoning_elements``).
    """
    found = candidate_of_item(prefix, item)
    candidate = found.id if found is not None else None
    item_node = candidate or f"item{item}"
    paths = []
    for chain in chains:
        members = chain_items(prefix, chain)
        if not members:
            continue
        nodes = [m.id for m in members]
        paths.append(CandidatePath(
            id=chain, kind=PathKind.CHAIN, chain=chain, nodes=nodes,
            edges=_chain_edges(prefix, chain, nodes), item_node=item_node,
            removal=Removal(chains=(chain,)),
            evidence=chain_facts(catalogue, co_watch, [m.item_index for m in members], item),
            rejected=chain_status(prefix, chain) == ChainStatus.REJECTED))
    for interest in sorted(intents(prefix), key=lambda i: i.id):
        intent = interest.id
        anchors = intent_anchors(prefix, intent)
        chain = interest.chain or (anchors[-1].chain if anchors else None)
        anchor_step = anchors[-1].step if anchors else None
        nodes = _chain_items(prefix, chain, anchor_step) if chain else []
        nodes += [a.id for a in anchors if a.id not in nodes]
        edges_along = _chain_edges(prefix, chain, nodes) if chain else []
        edges_along += [(a.id, intent) for a in anchors]
        localized = (graph_edge(prefix, intent, candidate).weight
                     if candidate is not None and prefix.has_edge(intent, candidate) else None)
        text = str(interest.text or "")
        facts = interest_facts(catalogue, text, item, similarity,
                               None if localized is None else float(localized)) if text else []
        measured = next((f.similarity for f in facts if f.kind == "interest_similarity"), None)
        paths.append(CandidatePath(
            id=f"{chain}>{intent}" if chain else intent, kind=PathKind.INTEREST, chain=chain,
            nodes=[*nodes, intent], edges=edges_along, item_node=item_node,
            removal=Removal(nodes=(intent,)), evidence=facts,
            rejected=chain is not None and chain_status(prefix, chain) == ChainStatus.REJECTED,
            similarity=measured))
    return paths


def flags(path: CandidatePath, effect: Effect) -> list[PathFlag]:
    out = []
    if not path.reaches_item:
        out.append(PathFlag.NO_EVIDENCE)
    if has_no_effect(effect):
        out.append(PathFlag.NO_EFFECT)
    elif works_against(effect):
        out.append(PathFlag.WORKS_AGAINST)
    if path.rejected:
        out.append(PathFlag.REJECTED_CHAIN)
    return out


def reaches(path: ExplanationPath) -> bool:
    """A path of the reasoning the model reads (not a rejected chain's) reaches the item."""
    return path.reaches_item and PathFlag.REJECTED_CHAIN not in path.flags


def path_json(prefix: nx.DiGraph, path: CandidatePath, effect: Effect, item: int,
              titles: Mapping[int, str], step: int) -> ExplanationPath:
    """The typed path: graph nodes and edges, then the evidence hop to the item."""
    nodes = []
    for n in path.nodes:
        record = node_record(prefix, n)
        nodes.append(PathNode(id=n, kind=node_kind(prefix, n), step=record.step,
                              label=node_text(prefix, n) or n,
                              item_index=None if isinstance(record, IntentNode)
                              else record.item_index))
    path_edges = []
    for u, v in path.edges:
        e = graph_edge(prefix, u, v)
        path_edges.append(PathEdge(source=u, target=v, kind=e.kind, reason=e.reason,
                                   intent=e.intent, score=e.score, status=e.status,
                                   weight=e.weight))
    reached = path.reaches_item
    if reached:   # the last hop: the strongest fact, from the path's last node to the item
        in_graph = path.item_node in prefix
        nodes.append(PathNode(id=path.item_node,
                              kind=NodeKind.CANDIDATE_ITEM if in_graph else "recommended_item",
                              step=node_record(prefix, path.item_node).step if in_graph else step,
                              label=titles[item], item_index=item))
        strongest = path.evidence[0]
        path_edges.append(PathEdge(source=path.nodes[-1], target=path.item_node,
                                   kind="evidence", reason=strongest.text,
                                   weight=strongest.similarity))
    flagged = flags(path, effect)
    removal = PathRemoval(chains=list(path.removal.chains), nodes=list(path.removal.nodes),
                          edges=[list(e) for e in path.removal.edges])
    return ExplanationPath(id=path.id, kind=path.kind,
                           ends_at=PathEnd.ITEM if reached else PathEnd.CHAIN_END,
                           chain=path.chain, similarity=path.similarity, nodes=nodes,
                           edges=path_edges,
                           effect=effect, evidence=path.evidence, flags=flagged, removal=removal,
                           reaches_item=reached, shown=not flagged)
