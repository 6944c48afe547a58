"""The reasoning graph: a typed ``networkx.DiGraph``, its build log, and its JSON form.

Nodes (``kind``):
  * ``session_item`` ``s<step>``: an item of the session window, with its chain,
    intent, the reason it joined the chain, and its chain's score and status;
  * ``intent`` ``d<chain>.<n>``: a next intent proposed from a kept chain's end;
  * ``candidate_item`` ``c<index>``: a catalogue item an intent was localized to.
Edges (``kind``): ``sequence`` (window order), ``chain`` (an item continues a
chain), ``diverge`` (chain end -> intent -> candidate item, with a weight).

Every node and edge has the ``step`` (window position) at which it was added,
so the graph of any prefix of the window is ``prefix_graph(g, step)``: one
build per user serves every target inside the window. What a prefix holds:

* session items, sequence and chain edges up to the step, exactly as built;
* the divergent extension of chains whose *last* item is at or before the
  step (it is stamped with that item's step, and was asked from that item
  only, so it never saw a later item);
* chain scores and statuses of the whole window (verification runs once per
  window), so a chain that continues past the step carries a score that saw
  later items: consumers that train on prefixes treat such chains as
  unverified (``models.graph_data.GraphOptions.hide_future_scores``).

Items carry the catalogue index and the dataset's item id; titles and LLM
texts are stored raw (untrusted: whoever renders them escapes them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

GRAPH_SCHEMA = "reasonrec.reasoning-graph"
GRAPH_SCHEMA_VERSION = 1

class NodeKind(StrEnum):
    """What a node is (``StrEnum``: stored and compared as its plain value)."""

    SESSION_ITEM = "session_item"
    INTENT = "intent"
    CANDIDATE_ITEM = "candidate_item"


class EdgeKind(StrEnum):
    """What an edge is."""

    SEQUENCE = "sequence"
    CHAIN = "chain"
    DIVERGE = "diverge"


class ChainStatus(StrEnum):
    """A chain's verification outcome."""

    VERIFIED = "verified"
    REJECTED = "rejected"
    UNVERIFIED = "unverified"


class Stage(StrEnum):
    """The LLMRG stage that added a node or edge."""

    CHAIN = "chain"
    VERIFY = "verify"
    DIVERGE = "diverge"


class GraphFormatError(ValueError):
    """A graph JSON document that does not follow the schema."""


class DroppedPiece(BaseModel):
    """A piece of the graph the LLM failed to produce, after retries."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    piece: str
    reason: str
    fallback: str = ""


class StageLog(BaseModel):
    """Cost of one stage (``chain``, ``verify``, ``diverge``, ``localize``)."""

    model_config = ConfigDict(extra="forbid")
    seconds: float = 0.0
    llm_calls: int = 0
    kb_hits: int = 0
    kb_misses: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


class BuildLog(BaseModel):
    """What building one graph cost and what went wrong.

    ``llm_calls`` counts requests sent to the backend (retries included);
    ``kb_hits`` the answers taken from the knowledge base instead.
    """

    model_config = ConfigDict(extra="forbid")
    llm_calls: int = 0
    kb_hits: int = 0
    kb_misses: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    llm_seconds: float = 0.0
    wall_seconds: float = 0.0
    stages: dict[str, StageLog] = Field(default_factory=dict)
    dropped: list[DroppedPiece] = Field(default_factory=list)
    backend: dict[str, Any] = Field(default_factory=dict)
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)

    def stage(self, name: str) -> StageLog:
        return self.stages.setdefault(name, StageLog())


class MaskRecord(BaseModel):
    """One self-verification question: which option is the masked item."""

    model_config = ConfigDict(extra="forbid")
    step: int
    options: list[int]
    answer: int | None
    recovered: float
    probability: float | None = None


class ChainRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    intent: str
    steps: list[int]
    item_indices: list[int]
    score: float | None = None
    status: ChainStatus = ChainStatus.UNVERIFIED
    masks: list[MaskRecord] = Field(default_factory=list)


class NodeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: NodeKind
    step: int = Field(ge=0)
    stage: Stage
    item_index: int | None = None
    item_id: str | None = None
    title: str | None = None
    intent: str | None = None
    chain: str | None = None
    reason: str | None = None
    score: float | None = None
    status: ChainStatus | None = None
    weight: float | None = None


class EdgeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    target: str
    kind: EdgeKind
    step: int = Field(ge=0)
    stage: Stage
    chain: str | None = None
    reason: str | None = None
    intent: str | None = None
    score: float | None = None
    status: ChainStatus | None = None
    weight: float | None = None


class GraphDocument(BaseModel):
    """The JSON form of a graph (versioned)."""

    schema_name: Literal["reasonrec.reasoning-graph"] = Field(GRAPH_SCHEMA, alias="schema")
    version: int
    dataset: str
    user: str
    window: list[int]
    window_item_ids: list[str]
    target: int | None = None
    target_position: int | None = Field(None, ge=0)
    chains: list[ChainRecord]
    nodes: list[NodeRecord]
    edges: list[EdgeRecord]
    build_log: BuildLog

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_GRAPH_KEYS = ("dataset", "user", "window", "window_item_ids", "target", "target_position")


def new_graph(dataset: str, user: str, window: list[int], window_item_ids: list[str],
              target: int | None, *, target_position: int | None = None) -> nx.DiGraph:
    """An empty graph with its metadata.

    Args:
        window: catalogue indices of the session window, oldest first.
        target: catalogue index of the item after the window (never shown to the LLM).
        target_position: position of ``target`` in the user's history, so the
            window is ``history[target_position - len(window):target_position]``.
    """
    graph = nx.DiGraph()
    graph.graph.update(schema=GRAPH_SCHEMA, version=GRAPH_SCHEMA_VERSION, dataset=dataset, user=user,
                       window=list(window), window_item_ids=list(window_item_ids), target=target,
                       target_position=target_position, chains=[], build_log=BuildLog())
    return graph


def _clean(record: BaseModel, skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in record.model_dump().items() if k not in skip and v is not None}


def graph_to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """The graph as a JSON-ready dict (validated on the way out)."""
    meta = graph.graph
    try:
        document = GraphDocument(
            schema=GRAPH_SCHEMA, version=GRAPH_SCHEMA_VERSION,
            **{k: meta.get(k) for k in _GRAPH_KEYS},
            chains=[c if isinstance(c, ChainRecord) else ChainRecord.model_validate(c)
                    for c in meta["chains"]],
            nodes=[NodeRecord(id=n, **attrs) for n, attrs in graph.nodes(data=True)],
            edges=[EdgeRecord(source=u, target=v, **attrs) for u, v, attrs in graph.edges(data=True)],
            build_log=meta["build_log"])
    except (ValidationError, KeyError) as exc:
        raise GraphFormatError(f"graph does not follow {GRAPH_SCHEMA} v{GRAPH_SCHEMA_VERSION}: "
                               f"{exc}") from None
    return document.model_dump(mode="json", by_alias=True, exclude_none=True)


def graph_from_json(payload: dict[str, Any]) -> nx.DiGraph:
    """Rebuild the graph from :func:`graph_to_json` output; raises :class:`GraphFormatError`."""
    if not isinstance(payload, dict):
        raise GraphFormatError("a graph document must be a JSON object")
    version = payload.get("version")
    if payload.get("schema") != GRAPH_SCHEMA or version != GRAPH_SCHEMA_VERSION:
        raise GraphFormatError(f"not a {GRAPH_SCHEMA} v{GRAPH_SCHEMA_VERSION} document "
                               f"(schema={payload.get('schema')!r}, version={version!r})")
    try:
        document = GraphDocument.model_validate(payload)
    except ValidationError as exc:
        raise GraphFormatError(f"invalid graph document: {exc.errors()[0]['loc']}: "
                               f"{exc.errors()[0]['msg']}") from None
    graph = new_graph(document.dataset, document.user, document.window, document.window_item_ids,
                      document.target, target_position=document.target_position)
    graph.graph["chains"] = list(document.chains)
    graph.graph["build_log"] = document.build_log
    for node in document.nodes:
        graph.add_node(node.id, **_clean(node, ("id",)))
    for edge in document.edges:
        if edge.source not in graph or edge.target not in graph:
            raise GraphFormatError(f"edge {edge.source}->{edge.target} names an unknown node")
        graph.add_edge(edge.source, edge.target, **_clean(edge, ("source", "target")))
    return graph


def prefix_graph(graph: nx.DiGraph, step: int) -> nx.DiGraph:
    """The graph restricted to what was added at window steps ``<= step``.

    Chain scores and statuses are those of the full window: verification runs
    once per window. Divergent nodes hang off the step of the chain end they
    extend; candidates the user has watched by ``step`` are left out.
    """
    # A candidate the user has watched by ``step`` is no recommendation there. The
    # builder excludes only what was seen up to the chain end it extends, so that
    # at earlier steps the items the user went on to watch can be candidates, as
    # the test target can be at the last step.
    seen = {int(i) for i in graph.graph["window"][: step + 1]}
    keep = [n for n, attrs in graph.nodes(data=True) if attrs["step"] <= step
            and not (attrs["kind"] == NodeKind.CANDIDATE_ITEM
                     and int(attrs["item_index"]) in seen)]
    sub = graph.subgraph(keep).copy()
    sub.remove_edges_from([(u, v) for u, v, attrs in sub.edges(data=True) if attrs["step"] > step])
    sub.graph["window"] = graph.graph["window"][: step + 1]
    sub.graph["window_item_ids"] = graph.graph["window_item_ids"][: step + 1]
    # The item after the prefix is the prefix's own target.
    window = graph.graph["window"]
    if step + 1 < len(window):
        sub.graph["target"] = window[step + 1]
        position = graph.graph.get("target_position")
        if position is not None:
            sub.graph["target_position"] = position - len(window) + step + 1
    sub.graph["chains"] = [_chain_prefix(c, step) for c in graph.graph["chains"] if min(c.steps) <= step]
    return sub


def _chain_prefix(chain: ChainRecord, step: int) -> ChainRecord:
    """A chain record cut to the steps ``<= step`` (score and status stay the full window's)."""
    if max(chain.steps) <= step:
        return chain
    kept = [(s, i) for s, i in zip(chain.steps, chain.item_indices) if s <= step]
    return chain.model_copy(update={"steps": [s for s, _ in kept],
                                    "item_indices": [i for _, i in kept],
                                    "masks": [m for m in chain.masks if m.step <= step]})


def item_nodes(graph: nx.DiGraph) -> list[tuple[str, dict[str, Any]]]:
    """Session and candidate item nodes with their attributes."""
    return [(n, a) for n, a in graph.nodes(data=True)
            if a["kind"] in (NodeKind.SESSION_ITEM, NodeKind.CANDIDATE_ITEM)]
