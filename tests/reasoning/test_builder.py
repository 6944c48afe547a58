"""Integration: a real ml-100k user's reasoning graph with the real default model."""

from __future__ import annotations

import networkx as nx
import pytest

from models.data import Dataset
from reasoning.backend import LLMBackend
from reasoning.builder import EmptySessionError, GraphBuilder, session_window
from reasoning.graph import graph_from_json, graph_to_json, prefix_graph
from reasoning.kb import KnowledgeBase
from reasoning.localizer import IntentLocalizer
from reasoning.reasons import is_template_reason
from tests.reasoning.conftest import MakeConfig

USER = "5"   # its window yields several chains, some verified, and a divergent extension


def _check_graph(graph: nx.DiGraph, dataset: Dataset, user: str) -> None:
    """The invariants every built graph must hold."""
    tau = graph.graph["build_log"].settings["tau"]
    catalogue = dataset.catalogue
    history = dataset.history(user)
    window = graph.graph["window"]
    assert window == [int(i) for i in history[-1 - len(window):-1]]
    assert graph.graph["target"] == int(history[-1])
    assert graph.graph["target_position"] == len(history) - 1
    # Every item node is a real catalogue item, with its own id and title.
    items = [(n, a) for n, a in graph.nodes(data=True) if a["kind"] != "intent"]
    for node, attrs in items:
        index = attrs["item_index"]
        assert 1 <= index <= len(catalogue), node
        assert attrs["item_id"] == catalogue[index].item_id and attrs["title"] == catalogue[index].title
    # A candidate is new to the user at the chain end it extends (its step); a later
    # window item may be one, but no prefix shows a candidate the user has watched.
    earlier = {int(i) for i in history[: len(history) - 1 - len(window)]}
    for _, attrs in items:
        if attrs["kind"] == "candidate_item":
            assert attrs["item_index"] not in earlier | set(window[: attrs["step"] + 1])
    for step in range(len(window)):
        shown = [a["item_index"] for _, a in prefix_graph(graph, step).nodes(data=True)
                 if a["kind"] == "candidate_item"]
        assert not set(shown) & set(window[: step + 1])
    # Chains cover the window: every step is in exactly one chain, in order.
    chains = graph.graph["chains"]
    steps = sorted(s for c in chains for s in c.steps)
    assert steps == list(range(len(window)))
    for chain in chains:
        assert chain.steps == sorted(chain.steps)
        assert chain.item_indices == [window[s] for s in chain.steps]
        assert chain.score is None or 0.0 <= chain.score <= 1.0
        assert chain.status == ("unverified" if chain.score is None else
                                "verified" if chain.score >= tau else "rejected")
    for _, _, attrs in graph.edges(data=True):
        for key in ("score", "weight"):
            assert attrs.get(key) is None or 0.0 <= attrs[key] <= 1.0
    # Divergent extensions hang only off verified chains' last items.
    verified_ends = {f"s{c.steps[-1]}" for c in chains if c.status == "verified"}
    for u, v, attrs in graph.edges(data=True):
        if attrs["kind"] == "diverge" and graph.nodes[v]["kind"] == "intent":
            assert u in verified_ends
    # Every node and edge is stamped with a window step.
    assert all(0 <= a["step"] < len(window) for _, a in graph.nodes(data=True))
    assert all(0 <= a["step"] < len(window) for _, _, a in graph.edges(data=True))


@pytest.mark.llm
@pytest.mark.slow
def test_real_user_graph_then_warm_rebuild(ml100k: Dataset, llama_backend: LLMBackend,
                                          make_config: MakeConfig,
                                          ml100k_localizer: IntentLocalizer) -> None:
    config = make_config()
    kb = KnowledgeBase(config.kb_path)
    builder = GraphBuilder(llama_backend, ml100k.catalogue, config, kb, ml100k_localizer)
    session = session_window(ml100k, USER, config.l_tru)
    assert len(session.items) == 10

    graph = builder.build(session)
    _check_graph(graph, ml100k, USER)
    # Every chain reason says something about the films: no template, negation or label copy.
    reasons = [(a["reason"], a["intent"]) for _, a in graph.nodes(data=True)
               if a["kind"] == "session_item"]
    assert len(reasons) == 10
    assert not [r for r, label in reasons if is_template_reason(r, label)], reasons
    log = graph.graph["build_log"]
    assert log.llm_calls > 0 and log.tokens_in > 0 and log.tokens_out > 0
    assert set(log.stages) >= {"chain", "verify"}
    assert log.settings["key"] == builder.settings["key"]
    assert log.backend["model_identity"].startswith("sha256:")

    # JSON round trip, for the whole graph and every prefix.
    document = graph_to_json(graph)
    assert graph_to_json(graph_from_json(document)) == document
    for step in range(len(session.items)):
        graph_from_json(graph_to_json(prefix_graph(graph, step)))

    # The same session again: everything comes from the KB.
    again = builder.build(session)
    warm = again.graph["build_log"]
    assert warm.llm_calls == 0 and warm.kb_misses == 0 and warm.kb_hits > 0
    assert warm.wall_seconds < 1.0
    assert _without_log(graph_to_json(again)) == _without_log(document)
    kb.close()


def _without_log(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "build_log"}


def test_session_window_before_the_test_target(ml100k: Dataset) -> None:
    history = ml100k.history("1")
    session = session_window(ml100k, "1", 10)
    assert [i.index for i in session.items] == [int(i) for i in history[-11:-1]]
    assert session.target.index == int(history[-1]) and session.target_position == len(history) - 1
    assert session.viewer == "unknown"   # the packaged ml-100k has no .user file
    early = session_window(ml100k, "1", 10, position=3)
    assert [i.index for i in early.items] == [int(i) for i in history[:3]]
    with pytest.raises(EmptySessionError, match="nothing to reason about"):
        session_window(ml100k, "1", 10, position=0)
    with pytest.raises(ValueError, match="outside"):
        session_window(ml100k, "1", 10, position=len(history) + 1)
    with pytest.raises(KeyError, match="unknown user"):
        session_window(ml100k, "no-such-user", 10)
