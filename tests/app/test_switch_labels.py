"""Plain labels of the Recommendations page's counterfactual switches (no Streamlit, no LLM)."""

from __future__ import annotations

import networkx as nx

from app.components.switch_labels import chain_labels, node_labels, window_items
from reasoning.graph import ChainRecord, ChainStatus, graph_from_json, graph_to_json, new_graph
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                   add_session_item)


def _graph() -> nx.DiGraph:
    """Chain c1 (steps 0, 2; verified, with a record), c2 (steps 1, 3; rejected, known only
    from its edge), an intent from c1's end localized to item 40; film "i11" watched twice."""
    graph = new_graph("toy", "u1", [11, 12, 13, 11], ["i11", "i12", "i13", "i11"], 15)
    for step, item in enumerate([11, 12, 13, 11]):
        chain, status = (("c1", ChainStatus.VERIFIED) if step % 2 == 0
                         else ("c2", ChainStatus.REJECTED))
        add_session_item(graph, step, item_index=item, item_id=f"i{item}",
                         title=f"Movie {item} ({step})", intent=f"{chain} mood", chain=chain,
                         reason="fits", score=0.5, status=status)
        if step:
            add_sequence_edge(graph, step)
    add_chain_edge(graph, 0, 2, chain="c1", intent="c1 mood", reason="again", score=0.7,
                   status=ChainStatus.VERIFIED)
    add_chain_edge(graph, 1, 3, chain="c2", intent="heist films", reason="again", score=0.1,
                   status=ChainStatus.REJECTED)
    intent = add_intent(graph, chain="c1", n=1, end_step=2, text="weepies")
    add_candidate(graph, intent, item_index=40, item_id="i40", title="Movie 40", weight=0.5)
    graph.graph["chains"] = [ChainRecord(id="c1", intent="romance", steps=[0, 2],
                                         item_indices=[11, 13], score=0.7,
                                         status=ChainStatus.VERIFIED)]
    return graph_from_json(graph_to_json(graph))


def test_chain_labels_name_the_intent_and_a_failed_check() -> None:
    chains = ["c1", "c2", "c7"]
    assert chain_labels(_graph(), chains) == {
        "c1": "Chain 1: romance",                                   # the record's intent
        "c2": "Chain 2: heist films (did not pass the check)",      # no record: its edge's
        "c7": "Chain 3: no stated intent",
    }


def test_node_labels_and_watched_films_are_plain_words() -> None:
    graph = _graph()
    assert node_labels(graph, ["dc1.1", "c40"], ["c1", "c2"]) == {
        "dc1.1": "Interest: weepies (chain 1)", "c40": "Suggested: Movie 40"}
    # Each film once, at its first place in the whole history (offset 20 before the window).
    assert window_items(graph, 20) == {"i11": "film 21: Movie 11 (0)",
                                       "i12": "film 22: Movie 12 (1)",
                                       "i13": "film 23: Movie 13 (2)"}
