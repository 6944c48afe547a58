"""The typed writers and readers of the reasoning graph."""

from __future__ import annotations

from reasoning.graph import (ChainStatus, EdgeKind, NodeKind, graph_from_json, graph_to_json,
                             new_graph)
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                   add_session_item, candidates, candidates_of, intents,
                                   session_items)


def _graph():
    graph = new_graph("toy", "u1", [11, 12, 13], ["i11", "i12", "i13"], 14)
    for step, item in enumerate([11, 12, 13]):
        add_session_item(graph, step, item_index=item, item_id=f"i{item}", title=f"Movie {item}",
                         intent="romance", chain="c1", reason="same mood", score=0.6,
                         status=ChainStatus.VERIFIED)
        if step:
            add_sequence_edge(graph, step)
    add_chain_edge(graph, 0, 1, chain="c1", intent="romance", reason="another romance",
                   score=0.6, status=ChainStatus.VERIFIED)
    late = add_intent(graph, chain="c1", n=1, end_step=2, text="love stories")
    early = add_intent(graph, chain="c1", n=2, end_step=1, text="weepies")
    add_candidate(graph, late, item_index=40, item_id="i40", title="Movie 40", weight=0.5)
    add_candidate(graph, early, item_index=40, item_id="i40", title="Movie 40", weight=0.9)
    add_candidate(graph, late, item_index=41, item_id="i41", title="Movie 41", weight=0.3)
    return graph


def test_writers_follow_the_schema_and_its_conventions() -> None:
    graph = _graph()
    assert graph_to_json(graph_from_json(graph_to_json(graph))) == graph_to_json(graph)
    # A chain edge between neighbours stands for their sequence edge.
    assert graph.edges["s0", "s1"]["kind"] == EdgeKind.CHAIN
    assert graph.edges["s1", "s2"]["kind"] == EdgeKind.SEQUENCE
    assert graph.nodes["dc1.1"]["kind"] == NodeKind.INTENT == "intent"
    # Proposed twice: the earliest step and the highest weight, one edge per proposal.
    assert graph.nodes["c40"]["step"] == 1 and graph.nodes["c40"]["weight"] == 0.9
    assert graph.edges["dc1.1", "c40"]["weight"] == 0.5
    assert graph.edges["dc1.1", "c40"]["chain"] == "c1"


def test_readers_return_typed_records_in_order() -> None:
    graph = graph_from_json(graph_to_json(_graph()))
    items = session_items(graph)
    assert [i.item_index for i in items] == [11, 12, 13]
    assert items[0].status == ChainStatus.VERIFIED and items[0].reason == "same mood"
    assert [(i.id, i.step, i.text) for i in intents(graph)] == [("dc1.2", 1, "weepies"),
                                                                 ("dc1.1", 2, "love stories")]
    assert [(c.item_index, c.step) for c in candidates(graph)] == [(40, 1), (41, 2)]
    assert sorted((c.item_index, w) for c, w in candidates_of(graph, "dc1.1")) == [(40, 0.5),
                                                                                  (41, 0.3)]
