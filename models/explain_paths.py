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
from models.explain_removal import Removal
from reasoning.graph import EdgeKind, NodeKind

#: A change smaller than this in the item's score is rounding, not an effect.
EFFECT_EPS = 1e-6


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


def chain_status(prefix: nx.DiGraph, chain: str) -> str | None:
    """The chain's verification status, from its record or its items."""
    for record in prefix.graph.get("chains", []):
        if record.id == chain and getattr(record, "status", None):
            return record.status
    statuses = [a.get("status") for _, a in prefix.nodes(data=True)
                if a["kind"] == NodeKind.SESSION_ITEM and a.get("chain") == chain and a.get("status")]
    return statuses[0] if statuses else None


def _chain_items(prefix: nx.DiGraph, chain: str, up_to: int | None = None) -> list[str]:
    """The chain's session nodes (up to window step ``up_to``), in window order."""
    nodes = [(a["step"], n) for n, a in prefix.nodes(data=True)
             if a["kind"] == NodeKind.SESSION_ITEM and a.get("chain") == chain
             and (up_to is None or a["step"] <= up_to)]
    return [n for _, n in sorted(nodes)]


def _chain_edges(prefix: nx.DiGraph, chain: str, nodes: list[str]) -> list[tuple[str, str]]:
    members = set(nodes)
    return [(u, v) for u, v, a in prefix.edges(data=True)
            if a["kind"] == EdgeKind.CHAIN and a.get("chain") == chain and u in members and v in members]


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
    candidate = next((n for n, a in prefix.nodes(data=True)
                      if a["kind"] == NodeKind.CANDIDATE_ITEM and a.get("item_index") == item), None)
    item_node = candidate or f"item{item}"
    paths = []
    for chain in chains:
        nodes = _chain_items(prefix, chain)
        if not nodes:
            continue
        items = [int(prefix.nodes[n]["item_index"]) for n in nodes]
        paths.append(CandidatePath(
            id=chain, kind=PathKind.CHAIN, chain=chain, nodes=nodes,
            edges=_chain_edges(prefix, chain, nodes), item_node=item_node,
            removal=Removal(chains=(chain,)),
            evidence=chain_facts(catalogue, co_watch, items, item),
            rejected=chain_status(prefix, chain) == "rejected"))
    for intent, attrs in sorted(prefix.nodes(data=True), key=lambda t: t[0]):
        if attrs["kind"] != "intent":
            continue
        anchors = sorted((a for a in prefix.predecessors(intent)
                          if prefix.nodes[a]["kind"] == NodeKind.SESSION_ITEM),
                         key=lambda n: prefix.nodes[n]["step"])
        chain = attrs.get("chain") or (prefix.nodes[anchors[-1]].get("chain") if anchors
                                       else None)
        anchor_step = prefix.nodes[anchors[-1]]["step"] if anchors else None
        nodes = _chain_items(prefix, chain, anchor_step) if chain else []
        nodes += [a for a in anchors if a not in nodes]
        edges = _chain_edges(prefix, chain, nodes) if chain else []
        edges += [(a, intent) for a in anchors]
        localized = (prefix.edges[intent, candidate].get("weight")
                     if candidate is not None and prefix.has_edge(intent, candidate) else None)
        text = str(attrs.get("intent") or "")
        facts = interest_facts(catalogue, text, item, similarity,
                               None if localized is None else float(localized)) if text else []
        measured = next((f.similarity for f in facts if f.kind == "interest_similarity"), None)
        paths.append(CandidatePath(
            id=f"{chain}>{intent}" if chain else intent, kind=PathKind.INTEREST, chain=chain,
            nodes=[*nodes, intent], edges=edges, item_node=item_node,
            removal=Removal(nodes=(intent,)), evidence=facts,
            rejected=chain is not None and chain_status(prefix, chain) == "rejected",
            similarity=measured))
    return paths


def flags(path: CandidatePath, effect: Effect) -> list[PathFlag]:
    out = []
    if not path.reaches_item:
        out.append(PathFlag.NO_EVIDENCE)
    if has_no_effect(effect):
        out.append(PathFlag.NO_EFFECT)
    elif effect.delta_rank < 0 or (effect.delta_rank == 0 and effect.delta_score > 0):
        out.append(PathFlag.WORKS_AGAINST)
    if path.rejected:
        out.append(PathFlag.REJECTED_CHAIN)
    return out


def reaches(path: ExplanationPath) -> bool:
    """A path of the reasoning the model reads (not a rejected chain's) reaches the item."""
    return path.reaches_item and PathFlag.REJECTED_CHAIN not in path.flags


def has_no_effect(effect: Effect) -> bool:
    return effect.delta_rank == 0 and abs(effect.delta_score) < EFFECT_EPS


def path_json(prefix: nx.DiGraph, path: CandidatePath, effect: Effect, item: int,
              titles: Mapping[int, str], step: int) -> ExplanationPath:
    """The typed path: graph nodes and edges, then the evidence hop to the item."""
    nodes = []
    for n in path.nodes:
        a = prefix.nodes[n]
        label = a.get("title") if a["kind"] != "intent" else a.get("intent")
        nodes.append(PathNode(id=n, kind=a["kind"], step=a["step"], label=str(label or n),
                              item_index=a.get("item_index")))
    edges = []
    for u, v in path.edges:
        a = prefix.edges[u, v]
        edges.append(PathEdge(source=u, target=v, kind=a["kind"], reason=a.get("reason"),
                              intent=a.get("intent"), score=a.get("score"),
                              status=a.get("status"), weight=a.get("weight")))
    reached = path.reaches_item
    if reached:   # the last hop: the strongest fact, from the path's last node to the item
        in_graph = path.item_node in prefix
        nodes.append(PathNode(id=path.item_node,
                              kind="candidate_item" if in_graph else "recommended_item",
                              step=prefix.nodes[path.item_node]["step"] if in_graph else step,
                              label=titles[item], item_index=item))
        strongest = path.evidence[0]
        edges.append(PathEdge(source=path.nodes[-1], target=path.item_node, kind="evidence",
                              reason=strongest.text, weight=strongest.similarity))
    flagged = flags(path, effect)
    removal = PathRemoval(chains=list(path.removal.chains), nodes=list(path.removal.nodes),
                          edges=[list(e) for e in path.removal.edges])
    return ExplanationPath(id=path.id, kind=path.kind,
                           ends_at=PathEnd.ITEM if reached else PathEnd.CHAIN_END,
                           chain=path.chain, similarity=path.similarity, nodes=nodes, edges=edges,
                           effect=effect, evidence=path.evidence, flags=flagged, removal=removal,
                           reaches_item=reached, shown=not flagged)
