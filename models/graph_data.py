"""Reasoning graphs (#3) as torch-geometric data for the GNN encoders and fusion (#4).

A reasoning graph (``reasoning/graph.py``: a ``networkx.DiGraph`` with
``session_item`` / ``intent`` / ``candidate_item`` nodes and ``sequence`` /
``chain`` / ``diverge`` edges) at a chosen prefix step becomes a
:class:`GraphPair` of two :class:`GraphData` objects:

* **G_rea** (encoded into E_ori): the session items of the prefix and the
  edges between them: the window order (``sequence``) and the LLM's chains
  (``chain``, weighted by the chain's verification score);
* **G_div** (encoded into E_div): the divergent extension: the chain ends it
  hangs off, the intents proposed there, and the catalogue items each intent
  was localized to (weighted by similarity). Empty when there is none.

The non-LLM control is :func:`sequence_graph`: the plain SR-GNN session graph
of the same window. It uses the same node and edge conventions as G_rea, so
G_rea with every chain, intent and candidate removed *is* the control graph.

Conventions (shared by every graph built here, so one encoder reads them all):

* Session items are merged by catalogue index (SR-GNN's session graph: a
  repeated item is one node), nodes sorted by catalogue index; the sequence
  edges are the consecutive pairs of the remaining session items in window
  order, so removing a session item bridges over it exactly as if the user had
  not seen it. Repeated edges (same source, target and type) are one edge,
  with the largest weight; edges are sorted by (type, source, target).
* ``x`` is the catalogue item index of item nodes (0 for intents) and indexes
  the shared item embedding table; ``intent`` indexes an intent table (see
  :class:`IntentIndex`; 0 for non-intent nodes and unknown intent texts).
  The table holds #3's text-encoder vectors of the vocabulary labels and of
  every divergent intent text of the training graphs
  (:meth:`IntentIndex.from_graphs`), cached on disk by
  :func:`cached_intent_table`; the encoder projects them.
* ``alias_inputs`` lists the nodes the encoder's attention readout pools:
  for session graphs the node of each window position (SR-GNN's alias), for
  G_div every node. ``last`` is ``[1]`` (the node of the latest session item,
  or for G_div the most recent chain end) or ``[0]`` for an empty graph.
  Both are offset by :meth:`GraphData.__inc__` when batched.

Prefixes: the graph of step ``t`` is ``reasoning.graph.prefix_graph``; chain
scores come from verifying the whole window, so a chain that continues after
``t`` counts as unverified there (``GraphOptions.hide_future_scores``): its
score saw the items the model is asked to predict.

Counterfactuals: :func:`remove` deletes chains and nodes from the networkx
graph with their dependants (a chain's divergent extension, intents left
without an anchor, candidates left without an intent) and bridges chains over
removed session items; :func:`counterfactual_pair` converts the result.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
from torch_geometric.data import Batch, Data

from models.bounded_cache import BoundedCache
from models.graph_edits import reasoning_elements, remove  # noqa: F401  (re-exported)
# The intent table and the counterfactual edits have their own modules; other code imports
# them from here, as it always has.
from models.intent_table import (INTENT_TABLE_VERSION, IntentIndex, TextEncoder,  # noqa: F401
                                 cached_intent_table, intent_cache_path, intent_texts,
                                 standardize_vectors)
from reasoning.graph import ChainRecord, ChainStatus, EdgeKind, NodeKind, prefix_graph
from reasoning.graph_nodes import (CandidateNode, GraphEdge, IntentNode, SessionItemNode,
                                   chain_records, graph_edges, node_record, session_items)

#: ``node_kind`` values.
SESSION_ITEM, INTENT, CANDIDATE_ITEM = 0, 1, 2
NODE_KINDS: dict[NodeKind, int] = {NodeKind.SESSION_ITEM: SESSION_ITEM, NodeKind.INTENT: INTENT,
                                   NodeKind.CANDIDATE_ITEM: CANDIDATE_ITEM}

#: ``edge_type`` values. ``diverge`` edges are split by what they join: a chain
#: end proposing an intent is not the same relation as an intent matching an item.
SEQUENCE, CHAIN, DIVERGE_INTENT, DIVERGE_ITEM = 0, 1, 2, 3
EDGE_TYPES: dict[str, int] = {"sequence": SEQUENCE, "chain": CHAIN,
                              "diverge_intent": DIVERGE_INTENT, "diverge_item": DIVERGE_ITEM}
NUM_EDGE_TYPES = len(EDGE_TYPES)
NUM_NODE_KINDS = len(NODE_KINDS)


@dataclass(frozen=True)
class GraphOptions:
    """How a reasoning graph becomes tensors; the ablations of #4 are settings here.

    Args:
        verification: weight chain edges by their chain's verification score
            (rejected chains handled by ``drop_rejected``). False is the
            "LLMRG without verification" ablation: every chain kept at weight 1.
        drop_rejected: with verification on, leave chains marked ``rejected``
            out of G_rea (LLMRG keeps only the chains that pass).
        unverified_weight: chain-edge weight of a chain verification could not
            score (every mask failed): neither kept nor rejected evidence.
        divergent: build G_div; False is the "without divergent extension"
            ablation (G_div is then always empty).
        hide_future_scores: at a prefix step, treat a chain that continues
            past the step as unverified. Verification runs once per window
            and masks every item of a chain, so such a chain's score and
            status depend on items after the prefix, the very items the
            model is trained to predict there.
    """

    verification: bool = True
    drop_rejected: bool = True
    unverified_weight: float = 0.5
    divergent: bool = True
    hide_future_scores: bool = True


class GraphData(Data):
    """One encoder input graph (or a batch of them, via ``Batch.from_data_list``).

    Attributes:
        x: ``[N]`` long, catalogue item index of item nodes (0 for intents).
        intent: ``[N]`` long, intent-table row of intent nodes (0 otherwise).
        node_kind: ``[N]`` long, :data:`NODE_KINDS`.
        edge_index: ``[2, E]`` long, ``source -> target``.
        edge_type: ``[E]`` long, :data:`EDGE_TYPES`.
        edge_weight: ``[E]`` float.
        alias_inputs: ``[R]`` long, the nodes the attention readout pools.
        last: ``[1]`` long (``[0]`` for an empty graph), the readout's last node.
        node_ids: the networkx ids of each node (a merged session item has one
            per window position), for mapping results back to the graph.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        # Readout indices point at nodes: PyG offsets only *index* keys by
        # itself, so these must be offset like edge_index or every graph after
        # the first in a batch would read another graph's nodes.
        if key in ("alias_inputs", "last"):
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)


@dataclass
class GraphPair:
    """The encoder inputs of one reasoning graph at one prefix.

    Attributes:
        rea: G_rea (session items, sequence and chain edges).
        div: G_div (chain ends, intents, candidate items); may be empty.
        session: catalogue indices of the remaining session items in window
            order (after removals), to recompute the base model's E_base.
    """

    rea: GraphData
    div: GraphData
    session: list[int]


# ------------------------------------------------------------------ building
def _session_nodes(items: Sequence[int]) -> tuple[list[int], list[int]]:
    """Unique items sorted by index (the nodes) and each position's node (the alias)."""
    nodes = sorted(set(items))
    position = {item: node for node, item in enumerate(nodes)}
    return nodes, [position[item] for item in items]


def _make(x: list[int], intent: list[int], kind: list[int],
          edges: dict[tuple[int, int, int], float], alias: list[int], last: list[int],
          node_ids: list[tuple[str, ...]]) -> GraphData:
    """Tensors from plain lists; ``edges`` maps ``(type, source, target)`` to a weight."""
    keys = sorted(edges)
    long = torch.long
    return GraphData(
        x=torch.tensor(x, dtype=long), intent=torch.tensor(intent, dtype=long),
        node_kind=torch.tensor(kind, dtype=long),
        edge_index=torch.tensor([[s for _, s, _ in keys], [t for _, _, t in keys]],
                                dtype=long).reshape(2, -1),
        edge_type=torch.tensor([k for k, _, _ in keys], dtype=long),
        edge_weight=torch.tensor([edges[k] for k in keys], dtype=torch.float32),
        alias_inputs=torch.tensor(alias, dtype=long), last=torch.tensor(last, dtype=long),
        node_ids=node_ids, num_nodes=len(x))


def _add_edge(edges: dict[tuple[int, int, int], float], key: tuple[int, int, int],
              weight: float) -> None:
    edges[key] = max(weight, edges.get(key, weight))


def _session_graph(items: Sequence[int], ids: Sequence[str]) -> tuple[
        list[int], list[int], dict[tuple[int, int, int], float], list[tuple[str, ...]]]:
    """Nodes, alias, sequence edges and node ids of a session (items in window order)."""
    nodes, alias = _session_nodes(items)
    edges: dict[tuple[int, int, int], float] = {}
    for a, b in zip(alias[:-1], alias[1:]):
        _add_edge(edges, (SEQUENCE, a, b), 1.0)
    node_ids: list[list[str]] = [[] for _ in nodes]
    for node, nid in zip(alias, ids):
        node_ids[node].append(nid)
    return nodes, alias, edges, [tuple(n) for n in node_ids]


def sequence_graph(items: Sequence[int]) -> GraphData:
    """The non-LLM control: the plain SR-GNN session graph of a window.

    Args:
        items: catalogue indices in window order (may be empty: an empty graph).

    Shapes:
        ``x [N]`` unique items, ``edge_index [2, E]`` (all ``sequence``),
        ``alias_inputs [L]``, ``last [1]`` (``[0]`` when empty).
    """
    items = [int(i) for i in items]
    nodes, alias, edges, node_ids = _session_graph(items, [f"s{t}" for t in range(len(items))])
    return _make(nodes, [0] * len(nodes), [SESSION_ITEM] * len(nodes), edges, alias,
                 alias[-1:], node_ids)


def _chain_weight(edge: GraphEdge, record: ChainRecord | None, options: GraphOptions,
                  unscored: Collection[str]) -> float | None:
    """Weight of a chain edge; None when the edge is left out.

    The edge's own score and status win; the chain's record (``graph.graph
    ["chains"]``) fills in what the edge lacks.
    """
    if not options.verification:
        return 1.0
    if edge.chain in unscored:
        return options.unverified_weight
    status = edge.status or (record.status if record is not None else None)
    if status == ChainStatus.REJECTED and options.drop_rejected:
        return None
    score = edge.score
    score = (record.score if record is not None else None) if score is None else score
    return options.unverified_weight if score is None else float(score)


def _rea_graph(graph: nx.DiGraph, options: GraphOptions,
               unscored: Collection[str]) -> tuple[GraphData, list[int]]:
    session = session_items(graph)
    items = [int(s.item_index) for s in session]
    nodes, alias, edges, node_ids = _session_graph(items, [s.id for s in session])
    node_of = {s.id: alias[p] for p, s in enumerate(session)}
    records = {c.id: c for c in chain_records(graph)}
    for edge in graph_edges(graph, EdgeKind.CHAIN):
        if edge.source not in node_of or edge.target not in node_of:
            continue
        weight = _chain_weight(edge, records.get(edge.chain) if edge.chain else None, options,
                               unscored)
        if weight is not None:
            _add_edge(edges, (CHAIN, node_of[edge.source], node_of[edge.target]), weight)
    rea = _make(nodes, [0] * len(nodes), [SESSION_ITEM] * len(nodes), edges, alias, alias[-1:],
                node_ids)
    return rea, items


def _div_graph(graph: nx.DiGraph, intents: IntentIndex, options: GraphOptions) -> GraphData:
    diverge = graph_edges(graph, EdgeKind.DIVERGE) if options.divergent else []
    # Each node once (a candidate proposed by many intents ends many edges).
    members = {n: node_record(graph, n)
               for n in dict.fromkeys(n for e in diverge for n in (e.source, e.target))}
    anchors = sorted((r for r in members.values() if isinstance(r, SessionItemNode)),
                     key=lambda r: r.step)
    # Chain ends merge by item like G_rea's session items; intents keep their
    # own node each; candidates are one node per catalogue item already (c<index>).
    anchor_nodes, anchor_alias = _session_nodes([int(r.item_index) for r in anchors])
    intent_nodes = sorted((r for r in members.values() if isinstance(r, IntentNode)),
                          key=lambda r: (r.step, r.id))
    candidate_nodes = sorted((r for r in members.values() if isinstance(r, CandidateNode)),
                             key=lambda r: int(r.item_index))
    node_of: dict[str, int] = {r.id: anchor_alias[p] for p, r in enumerate(anchors)}
    node_ids: list[list[str]] = [[] for _ in anchor_nodes]
    for r in anchors:
        node_ids[node_of[r.id]].append(r.id)
    x = list(anchor_nodes)
    intent = [0] * len(x)
    kind = [SESSION_ITEM] * len(x)
    for r in intent_nodes:
        node_of[r.id] = len(x)
        x.append(0)
        intent.append(intents[r.text])
        kind.append(INTENT)
        node_ids.append([r.id])
    for r in candidate_nodes:
        node_of[r.id] = len(x)
        x.append(int(r.item_index))
        intent.append(0)
        kind.append(CANDIDATE_ITEM)
        node_ids.append([r.id])
    edges: dict[tuple[int, int, int], float] = {}
    for e in diverge:
        relation = DIVERGE_ITEM if isinstance(members[e.target], CandidateNode) else DIVERGE_INTENT
        weight = 1.0 if e.weight is None else float(e.weight)
        _add_edge(edges, (relation, node_of[e.source], node_of[e.target]), weight)
    # The readout's "last" node is the most recent chain end: the divergent
    # graph's counterpart of SR-GNN's last clicked item.
    last = [node_of[anchors[-1].id]] if anchors else ([0] if x else [])
    return _make(x, intent, kind, edges, list(range(len(x))), last, [tuple(n) for n in node_ids])


def reasoning_pair(graph: nx.DiGraph, intents: IntentIndex, step: int | None = None,
                   options: GraphOptions = GraphOptions()) -> GraphPair:
    """G_rea and G_div of a reasoning graph at a prefix.

    Args:
        graph: a reasoning graph (``reasoning.graph`` schema); not modified.
        intents: the intent-table rows for intent nodes.
        step: the last window step included (``reasoning.graph.prefix_graph``);
            None for the whole graph.
        options: verification and divergence settings (the ablations).

    Shapes:
        see :class:`GraphData`; ``rea.alias_inputs`` is ``[step + 1]`` minus removed items.
    """
    unscored: frozenset[str] = frozenset()
    if step is not None:
        unscored = _chains_after(graph, step) if options.hide_future_scores else frozenset()
        graph = prefix_graph(graph, step)
    return _pair(graph, intents, options, unscored)


def _pair(graph: nx.DiGraph, intents: IntentIndex, options: GraphOptions,
          unscored: Collection[str]) -> GraphPair:
    rea, session = _rea_graph(graph, options, unscored)
    return GraphPair(rea=rea, div=_div_graph(graph, intents, options), session=session)


def _chains_after(graph: nx.DiGraph, step: int) -> frozenset[str]:
    """Chains with an item after window step ``step`` (from records and item nodes)."""
    late = {c.id for c in chain_records(graph) if max(c.steps, default=-1) > step}
    late |= {item.chain for item in session_items(graph) if item.step > step and item.chain}
    return frozenset(late)


def counterfactual_pair(graph: nx.DiGraph, intents: IntentIndex, step: int | None = None, *,
                        chains: Collection[str] = (), nodes: Collection[str] = (),
                        options: GraphOptions = GraphOptions()) -> GraphPair:
    """:func:`reasoning_pair` of the prefix graph with ``chains`` and ``nodes`` removed.

    The prefix is taken first, so ids must exist at that prefix. The prefix of a recent
    (graph, step) is reused (:class:`_PrefixCache`): change no graph after its first
    counterfactual.
    """
    unscored: frozenset[str] = frozenset()
    if step is not None:
        graph, late = _PREFIXES.get(graph, step)
        unscored = late if options.hide_future_scores else frozenset()
    return _pair(remove(graph, chains, nodes), intents, options, unscored)


class _PrefixCache:
    """The most recent prefix graphs (with :func:`_chains_after`), by graph identity and step.

    An explanation scores hundreds of counterfactuals of one user's graph at one step;
    cutting the prefix each time was most of their cost. Entries hold the graph weakly
    (an id reused by a new graph is no hit) and are read, never modified: callers get
    copies through :func:`remove`. A graph must not change after its first counterfactual
    (placed user graphs never do).
    """

    def __init__(self, size: int = 64) -> None:
        self._entries: BoundedCache[tuple[int, int], tuple[weakref.ref[nx.DiGraph], nx.DiGraph,
                                                           frozenset[str]]] = BoundedCache(size)

    def get(self, graph: nx.DiGraph, step: int) -> tuple[nx.DiGraph, frozenset[str]]:
        key = (id(graph), int(step))
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is graph:
            return entry[1], entry[2]
        prefix, late = prefix_graph(graph, step), _chains_after(graph, step)
        self._entries.put(key, (weakref.ref(graph), prefix, late))
        return prefix, late


_PREFIXES = _PrefixCache()


# ------------------------------------------------------------------ batching
def collate_pairs(pairs: Sequence[GraphPair]) -> tuple[Batch, Batch]:
    """Batch G_rea and G_div of each pair (``Batch.from_data_list``, offsets included).

    Shapes:
        two batches of ``len(pairs)`` graphs; an empty G_div adds no nodes but
        keeps its row (the encoder returns zeros there).
    """
    return (Batch.from_data_list([p.rea for p in pairs]),
            Batch.from_data_list([p.div for p in pairs]))
