"""Hand-made reasoning graphs for page tests (schema-valid; no LLM involved).

The stored-graph flows and the XSS checks need graphs whose content the test
controls: the LLM cannot be made to write a hostile reason on demand. The
graph has the shape ``reasoning.builder`` gives: session items in window
order, one verified chain over every other item, one rejected chain over the
rest, and one divergent intent localized to a catalogue item.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from models.data import Dataset
from reasoning.builder import session_window
from reasoning.graph import BuildLog, ChainRecord, ChainStatus, StageLog, new_graph
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                  add_session_item)
from reasoning.store import GraphStore

VERIFIED, REJECTED = "c1", "c2"


def make_graph(dataset: Dataset, user: str, l_tru: int = 10, *, reason: str = "same mood",
               intent: str = "space adventure", candidate: int | None = None) -> nx.DiGraph:
    """A graph of ``user``'s default window (before the test target)."""
    session = session_window(dataset, user, l_tru)
    items = list(session.items)
    graph = new_graph(dataset.name, str(user), [i.index for i in items], [i.item_id for i in items],
                      session.target.index if session.target else None,
                      target_position=session.target_position)
    chains = {VERIFIED: [s for s in range(len(items)) if s % 2 == 0],
              REJECTED: [s for s in range(len(items)) if s % 2 == 1]}
    scores = {VERIFIED: 0.8, REJECTED: 0.2}
    statuses = {VERIFIED: ChainStatus.VERIFIED, REJECTED: ChainStatus.REJECTED}
    for step, item in enumerate(items):
        chain = VERIFIED if step % 2 == 0 else REJECTED
        add_session_item(graph, step, item_index=item.index, item_id=item.item_id,
                         title=item.title, intent=intent, chain=chain, reason=f"{reason} {step}",
                         score=scores[chain], status=statuses[chain])
        if step:
            add_sequence_edge(graph, step)
    for chain, steps in chains.items():
        for prev, step in zip(steps, steps[1:]):
            add_chain_edge(graph, prev, step, chain=chain, reason=f"{reason} {step}",
                           intent=intent, score=scores[chain], status=statuses[chain])
    end = chains[VERIFIED][-1]
    intent_id = add_intent(graph, chain=VERIFIED, n=1, end_step=end, text=intent)
    index = candidate if candidate is not None else (
        session.target.index if session.target else items[0].index)
    item = dataset.catalogue[index]
    add_candidate(graph, intent_id, item_index=index, item_id=item.item_id, title=item.title,
                  weight=0.7)
    graph.graph["chains"] = [
        ChainRecord(id=c, intent=intent, steps=s, item_indices=[items[i].index for i in s],
                    score=scores[c], status=statuses[c])
        for c, s in chains.items()]
    graph.graph["build_log"] = BuildLog(
        llm_calls=7, kb_hits=3, kb_misses=7, tokens_in=900, tokens_out=120, llm_seconds=4.0,
        wall_seconds=5.0, stages={"chain": StageLog(seconds=3.0, llm_calls=5, kb_hits=3)},
        backend={"backend": "llama", "supports_gpu_offload": False, "n_gpu_layers_offloaded": 0,
                 "n_layers": 30})
    return graph


def store_graph(graphs_dir: Path, graph: nx.DiGraph) -> Path:
    """Save ``graph`` into a reasoning graph store folder."""
    return GraphStore(graphs_dir).save(graph)
