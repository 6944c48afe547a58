"""The graph document: versioned JSON round trip, format errors, prefix graphs as a filter."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from reasoning.graph import (GRAPH_SCHEMA, GRAPH_SCHEMA_VERSION, ChainRecord, GraphFormatError,
                             MaskRecord, graph_from_json, graph_to_json, new_graph, prefix_graph)


def small_graph() -> nx.DiGraph:
    """Window 11, 12, 13, 14 (history positions 6..9, target 15 at 10); chains c1 = 0, 2, 3 and
    c2 = 1; c1 verified and extended from its end (step 3) to candidates 40 and 41."""
    graph = new_graph("toy", "u1", [11, 12, 13, 14], ["i11", "i12", "i13", "i14"], 15,
                      target_position=10)
    chain_of = {0: "c1", 1: "c2", 2: "c1", 3: "c1"}
    for step, item in enumerate([11, 12, 13, 14]):
        graph.add_node(f"s{step}", kind="session_item", step=step, stage="chain", item_index=item,
                       item_id=f"i{item}", title=f"<b>Movie {item}</b>", intent="romance",
                       chain=chain_of[step], reason="same intent", score=0.75, status="verified")
        if step:
            graph.add_edge(f"s{step - 1}", f"s{step}", kind="sequence", step=step, stage="chain")
    graph.add_edge("s0", "s2", kind="chain", step=2, stage="chain", chain="c1", reason="r",
                   intent="romance", score=0.75, status="verified")
    graph.add_edge("s2", "s3", kind="chain", step=3, stage="chain", chain="c1", reason="r",
                   intent="romance", score=0.75, status="verified")
    graph.add_node("dc1.1", kind="intent", step=3, stage="diverge", intent="love stories",
                   chain="c1")
    graph.add_edge("s3", "dc1.1", kind="diverge", step=3, stage="diverge", chain="c1",
                   intent="love stories")
    for index, weight in ((40, 0.9), (41, 0.4)):
        graph.add_node(f"c{index}", kind="candidate_item", step=3, stage="diverge",
                       item_index=index, item_id=f"i{index}", title=f"Movie {index}", weight=weight)
        graph.add_edge("dc1.1", f"c{index}", kind="diverge", step=3, stage="diverge", weight=weight)
    graph.graph["chains"] = [
        ChainRecord(id="c1", intent="romance", steps=[0, 2, 3], item_indices=[11, 13, 14],
                    score=0.75, status="verified",
                    masks=[MaskRecord(step=3, options=[14, 99], answer=14, recovered=0.7),
                           MaskRecord(step=0, options=[50, 11], answer=11, recovered=0.8)]),
        ChainRecord(id="c2", intent="suspense", steps=[1], item_indices=[12], score=None,
                    status="unverified")]
    return graph


def test_json_round_trip_is_exact() -> None:
    graph = small_graph()
    document = graph_to_json(graph)
    assert document["schema"] == GRAPH_SCHEMA and document["version"] == GRAPH_SCHEMA_VERSION
    text = json.dumps(document)
    again = graph_from_json(json.loads(text))
    assert graph_to_json(again) == document
    assert nx.utils.graphs_equal(graph, again)
    assert again.nodes["s0"]["title"] == "<b>Movie 11</b>"   # stored raw: renderers escape


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=GRAPH_SCHEMA_VERSION + 1), "v1 document"),
    (lambda d: d.update(schema="something-else"), "not a reasonrec.reasoning-graph"),
    (lambda d: d["nodes"][0].update(kind="movie"), "kind"),
    (lambda d: d["nodes"][0].update(step=-1), "step"),
    (lambda d: d["edges"].append({"source": "s0", "target": "nowhere", "kind": "chain",
                                  "step": 1, "stage": "chain"}), "unknown node"),
    (lambda d: d.pop("chains"), "chains"),
])
def test_bad_documents_are_refused_with_the_field(edit, message: str) -> None:
    document = graph_to_json(small_graph())
    edit(document)
    with pytest.raises(GraphFormatError, match=message):
        graph_from_json(document)


def test_prefix_graph_is_a_step_filter() -> None:
    graph = small_graph()
    prefix = prefix_graph(graph, 2)
    assert sorted(prefix.nodes) == ["s0", "s1", "s2"]
    assert sorted(prefix.edges) == [("s0", "s1"), ("s0", "s2"), ("s1", "s2")]
    assert prefix.graph["window"] == [11, 12, 13]
    # The prefix predicts the next window item.
    assert prefix.graph["target"] == 14 and prefix.graph["target_position"] == 9
    c1 = next(c for c in prefix.graph["chains"] if c.id == "c1")
    assert c1.steps == [0, 2] and c1.item_indices == [11, 13]
    assert [m.step for m in c1.masks] == [0]
    assert c1.score == 0.75   # the whole window's score, as documented
    # Every prefix is itself a valid document.
    for step in range(4):
        graph_from_json(graph_to_json(prefix_graph(graph, step)))
    assert graph_to_json(prefix_graph(graph, 3)) == graph_to_json(graph)
    assert graph.graph["chains"][0].steps == [0, 2, 3]   # the source graph is untouched


def test_a_prefix_drops_candidates_the_user_has_watched_by_then() -> None:
    """An extension from step 1 may propose window item 13 (watched at step 2): it is a
    candidate, and the target, of the prefix at step 1, and gone from later prefixes."""
    graph = small_graph()
    graph.add_node("dc2.1", kind="intent", step=1, stage="diverge", intent="thrillers",
                   chain="c2")
    graph.add_edge("s1", "dc2.1", kind="diverge", step=1, stage="diverge", chain="c2",
                   intent="thrillers")
    graph.add_node("c13", kind="candidate_item", step=1, stage="diverge", item_index=13,
                   item_id="i13", title="Movie 13", weight=0.5)
    graph.add_edge("dc2.1", "c13", kind="diverge", step=1, stage="diverge", weight=0.5)
    assert "c13" in prefix_graph(graph, 1) and prefix_graph(graph, 1).graph["target"] == 13
    for step in (2, 3):
        prefix = prefix_graph(graph, step)
        assert "c13" not in prefix and "dc2.1" in prefix   # the intent stays, its item goes
