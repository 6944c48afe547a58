"""The typed writers and readers of the reasoning graph."""

from __future__ import annotations

import pytest

from reasoning.graph import (ChainRecord, ChainStatus, EdgeKind, GraphFormatError, NodeKind,
                             Stage, graph_from_json, graph_to_json, new_graph)
from reasoning.graph_nodes import (CandidateNode, IntentNode, add_candidate, add_chain_edge,
                                   add_intent, add_sequence_edge, add_session_item,
                                   candidate_of_item, candidates, candidates_of, chain_items,
                                   chain_records, chain_status, edge_kind, graph_edge,
                                   graph_edges, intent_anchors, intents, node_chain, node_ids,
                                   node_kind, node_record, node_stage, node_text,
                                   session_items, set_chain_verdict)


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


def _two_chains():
    """Chain c1 at steps 0 and 2 (verified), c2 at steps 1 and 3 (rejected, no record),
    an intent from each chain's end, candidate 40 proposed by both."""
    graph = new_graph("toy", "u1", [11, 12, 13, 14], ["i11", "i12", "i13", "i14"], 15)
    for step, item in enumerate([11, 12, 13, 14]):
        chain, status = ("c1", ChainStatus.VERIFIED) if step % 2 == 0 else ("c2",
                                                                          ChainStatus.REJECTED)
        add_session_item(graph, step, item_index=item, item_id=f"i{item}", title=f"Movie {item}",
                         intent=f"{chain} mood", chain=chain, reason="fits", score=0.5,
                         status=status)
        if step:
            add_sequence_edge(graph, step)
    add_chain_edge(graph, 0, 2, chain="c1", intent="c1 mood", reason="same again", score=0.7,
                   status=ChainStatus.VERIFIED)
    add_chain_edge(graph, 1, 3, chain="c2", intent="c2 mood", reason="and again")
    first = add_intent(graph, chain="c1", n=1, end_step=2, text="weepies", reason="sad films")
    second = add_intent(graph, chain="c2", n=1, end_step=3, text="heists")
    add_candidate(graph, first, item_index=40, item_id="i40", title="Movie 40", weight=0.5)
    add_candidate(graph, second, item_index=40, item_id="i40", title="Movie 40", weight=0.8)
    add_candidate(graph, second, item_index=41, item_id="i41", title="Movie 41")
    graph.graph["chains"] = [ChainRecord(id="c1", intent="c1 mood", steps=[0, 2],
                                         item_indices=[11, 13], score=0.7,
                                         status=ChainStatus.VERIFIED)]
    return graph_from_json(graph_to_json(graph))


def test_kinds_ids_and_records_of_single_nodes() -> None:
    graph = _two_chains()
    assert node_kind(graph, "s0") is NodeKind.SESSION_ITEM
    assert node_kind(graph, "dc2.1") is NodeKind.INTENT
    assert edge_kind(graph, "s0", "s2") is EdgeKind.CHAIN
    assert edge_kind(graph, "s2", "s3") is EdgeKind.SEQUENCE
    assert node_ids(graph, NodeKind.INTENT) == ["dc1.1", "dc2.1"]
    assert sorted(node_ids(graph, NodeKind.SESSION_ITEM, NodeKind.CANDIDATE_ITEM)) == [
        "c40", "c41", "s0", "s1", "s2", "s3"]
    intent = node_record(graph, "dc1.1")
    assert isinstance(intent, IntentNode)
    assert (intent.chain, intent.text, intent.reason, intent.step) == ("c1", "weepies",
                                                                      "sad films", 2)
    assert isinstance(node_record(graph, "c40"), CandidateNode)
    assert node_record(graph, "c40").step == 2   # the earlier of its two proposals
    assert node_record(graph, "c40").weight == 0.8   # the higher of its two weights
    assert node_record(graph, "c41").weight is None
    assert [node_stage(graph, n) for n in ("s0", "dc1.1", "c40")] == [Stage.CHAIN, Stage.DIVERGE,
                                                                      Stage.DIVERGE]
    assert (node_text(graph, "s1"), node_text(graph, "dc2.1")) == ("Movie 12", "heists")
    assert [node_chain(graph, n) for n in ("s1", "dc1.1", "c40")] == ["c2", "c1", None]


def test_missing_attributes_name_the_node_and_the_field() -> None:
    graph = _two_chains()
    del graph.nodes["dc2.1"]["intent"]
    with pytest.raises(GraphFormatError, match=r"intent node 'dc2.1' has no intent"):
        intents(graph)


def test_edge_readers_filter_by_kind_and_chain() -> None:
    graph = _two_chains()
    chain_edges = graph_edges(graph, EdgeKind.CHAIN)
    assert [(e.source, e.target, e.chain) for e in chain_edges] == [("s0", "s2", "c1"),
                                                                   ("s1", "s3", "c2")]
    c1 = graph_edges(graph, EdgeKind.CHAIN, chain="c1")
    assert len(c1) == 1 and (c1[0].score, c1[0].status, c1[0].reason) == (
        0.7, ChainStatus.VERIFIED, "same again")
    assert graph_edges(graph, EdgeKind.CHAIN, chain="c2")[0].score is None
    diverge = graph_edges(graph, EdgeKind.DIVERGE)
    assert {(e.source, e.target) for e in diverge} == {("s2", "dc1.1"), ("s3", "dc2.1"),
                                                       ("dc1.1", "c40"), ("dc2.1", "c40"),
                                                       ("dc2.1", "c41")}
    assert len(graph_edges(graph)) == len(graph.edges)
    assert len(graph_edges(graph, EdgeKind.SEQUENCE, EdgeKind.CHAIN)) == 3 + 2
    localized = graph_edge(graph, "dc2.1", "c40")
    assert (localized.kind, localized.weight, localized.chain) == (EdgeKind.DIVERGE, 0.8, "c2")
    assert graph_edge(graph, "dc2.1", "c41").weight is None


def test_chain_readers() -> None:
    graph = _two_chains()
    assert [c.id for c in chain_records(graph)] == ["c1"]
    graph.graph["chains"] = [c.model_dump() for c in graph.graph["chains"]]   # plain JSON dicts
    assert chain_records(graph)[0].status is ChainStatus.VERIFIED
    assert [i.id for i in chain_items(graph, "c2")] == ["s1", "s3"]
    assert [i.id for i in chain_items(graph, "c2", up_to=2)] == ["s1"]
    assert chain_items(graph, "c9") == []
    # The record wins; a chain without one takes its items' status.
    assert chain_status(graph, "c1") is ChainStatus.VERIFIED
    assert chain_status(graph, "c2") is ChainStatus.REJECTED
    assert chain_status(graph, "c9") is None


def test_intent_anchors_and_the_candidate_of_an_item() -> None:
    graph = _two_chains()
    assert [a.id for a in intent_anchors(graph, "dc2.1")] == ["s3"]
    assert candidate_of_item(graph, 41).id == "c41"
    assert candidate_of_item(graph, 11) is None   # a window item, not a candidate


def test_a_verdict_given_after_the_chain_is_written_reaches_its_items_and_edges() -> None:
    graph = _two_chains()
    record = ChainRecord(id="c2", intent="c2 mood", steps=[1, 3], item_indices=[12, 14],
                         score=0.1, status=ChainStatus.REJECTED)
    set_chain_verdict(graph, record)
    assert [(i.score, i.status) for i in chain_items(graph, "c2")] == [
        (0.1, ChainStatus.REJECTED)] * 2
    stamped = graph_edge(graph, "s1", "s3")
    assert (stamped.score, stamped.status) == (0.1, ChainStatus.REJECTED)
    assert [i.score for i in chain_items(graph, "c1")] == [0.5, 0.5]   # other chains untouched
