"""Reasoning graphs for model tests, built as reasoning/graph.py's schema describes.

The LLM builder of #3 writes graphs with ``reasoning.graph.new_graph`` and the
writers of ``reasoning.graph_nodes``; this module does the same by hand (no LLM), and every
graph goes through the schema's JSON round trip, so a graph that does not
follow the schema fails here rather than passing silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from reasoning.graph import ChainRecord, ChainStatus, graph_from_json, graph_to_json, new_graph
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                  add_session_item)

INTENTS = ("light comedy", "dark thriller", "space adventure", "romance", "war drama")


@dataclass
class ChainSpec:
    """A chain: its window steps, intent, verification, and divergent extension.

    ``diverge`` lists ``(intent text, [(catalogue index, similarity), ...])``
    proposed from the chain's last item.
    """

    id: str
    steps: list[int]
    intent: str
    score: float | None = None
    status: str = "unverified"
    diverge: list[tuple[str, list[tuple[int, float]]]] = field(default_factory=list)


def build_graph(window: Sequence[int], chains: Sequence[ChainSpec], *,
                user: str = "u1", target: int | None = None) -> nx.DiGraph:
    """A schema-valid reasoning graph over ``window`` (catalogue indices)."""
    graph = new_graph("toy", user, list(window), [f"i{i}" for i in window], target)
    chain_of = {s: c for c in chains for s in c.steps}
    for step, item in enumerate(window):
        chain = chain_of[step]
        add_session_item(graph, step, item_index=item, item_id=f"i{item}", title=f"Movie {item}",
                         intent=chain.intent, chain=chain.id, reason=f"joins {chain.id}",
                         score=chain.score, status=ChainStatus(chain.status))
        if step:
            add_sequence_edge(graph, step)
    for chain in chains:
        for a, b in zip(chain.steps[:-1], chain.steps[1:]):
            add_chain_edge(graph, a, b, chain=chain.id, reason=f"{chain.intent} again",
                           intent=chain.intent, score=chain.score,
                           status=ChainStatus(chain.status))
        end = chain.steps[-1]
        for n, (intent, matches) in enumerate(chain.diverge, start=1):
            intent_id = add_intent(graph, chain=chain.id, n=n, end_step=end, text=intent,
                                   reason=f"after {chain.intent}")
            for item, similarity in matches:
                add_candidate(graph, intent_id, item_index=item, item_id=f"i{item}",
                              title=f"Movie {item}", weight=similarity)
    graph.graph["chains"] = [ChainRecord(id=c.id, intent=c.intent, steps=c.steps,
                                         item_indices=[window[s] for s in c.steps],
                                         score=c.score, status=c.status) for c in chains]
    return graph_from_json(graph_to_json(graph))


def example_graph() -> nx.DiGraph:
    """Eight window items, three chains (verified, rejected, unverified), two extensions.

    Steps: 0..7 = items 5, 9, 2, 7, 11, 3, 8, 14. Chain c1 (verified 0.8) is
    steps 0, 2, 5 and diverges at step 5; c2 (rejected 0.2) steps 1, 3; c3
    (unverified) steps 4, 6, 7 and diverges at step 7. Candidate 20 is shared
    by c1's and c3's intents.
    """
    return build_graph(
        [5, 9, 2, 7, 11, 3, 8, 14],
        [ChainSpec("c1", [0, 2, 5], INTENTS[0], 0.8, "verified",
                   diverge=[(INTENTS[1], [(20, 0.9), (21, 0.6)]), (INTENTS[3], [(22, 0.7)])]),
         ChainSpec("c2", [1, 3], INTENTS[2], 0.2, "rejected"),
         ChainSpec("c3", [4, 6, 7], INTENTS[4], None, "unverified",
                   diverge=[("an intent outside the vocabulary", [(20, 0.5), (23, 0.4)])])],
        target=17)


def small_graphs() -> Mapping[str, nx.DiGraph]:
    """Graphs of several sizes, one without divergent extension and one with a repeated item."""
    return {
        "example": example_graph(),
        "no_divergence": build_graph([4, 6],
                                     [ChainSpec("c1", [0, 1], INTENTS[2], 0.9, "verified")]),
        "single": build_graph([13], [ChainSpec("c1", [0], INTENTS[0], 1.0, "verified",
                                               diverge=[(INTENTS[0], [(12, 0.3)])])]),
        "repeat": build_graph([6, 1, 6, 2], [ChainSpec("c1", [0, 2], INTENTS[3], 0.6, "verified",
                                                       diverge=[(INTENTS[1], [(1, 0.8)])]),
                                             ChainSpec("c2", [1, 3], INTENTS[1], 0.7, "verified")]),
    }
