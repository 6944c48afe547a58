"""The explainer's caches give what recomputing from scratch gives.

* ``counterfactual_pair`` reuses a recent (graph, step)'s prefix graph: the
  removals it serves must never change that shared prefix;
* ``CounterfactualScorer.model_input`` builds one input per removal *set*: a
  removal's input must not depend on the order of its ids;
* ``evidence.CachedSimilarity`` remembers the scores of recent interest texts.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.evidence import CachedSimilarity
from models.graph_data import GraphPair, IntentIndex, counterfactual_pair, reasoning_pair
from tests.models.reasoning_graphs import INTENTS, example_graph, small_graphs

INDEX = IntentIndex(INTENTS)
TENSOR_FIELDS = ("x", "intent", "node_kind", "edge_index", "edge_type", "edge_weight",
                 "alias_inputs", "last")

#: Removals of example_graph at its last step: chains, intents, candidates, session items
#: (bridged), and mixes of them.
REMOVALS = [((), ("s2",)), (("c1",), ()), ((), ("dc1.1", "c20")), (("c3",), ("s2", "s5")),
            (("c1", "c2"), ("s4", "dc3.1")), ((), ("s0", "s2", "s5")), ((), ())]


def assert_same_pair(a: GraphPair, b: GraphPair) -> None:
    for graph_a, graph_b in ((a.rea, b.rea), (a.div, b.div)):
        for name in TENSOR_FIELDS:
            assert torch.equal(graph_a[name], graph_b[name]), name
        assert graph_a.node_ids == graph_b.node_ids
    assert a.session == b.session


def test_repeated_counterfactuals_of_one_graph_equal_those_of_fresh_graphs() -> None:
    graph = example_graph()
    for step in range(len(graph.graph["window"])):
        for chains, nodes in REMOVALS:
            try:
                expected = counterfactual_pair(example_graph(), INDEX, step, chains=chains,
                                               nodes=nodes)
            except KeyError:
                continue   # not in this prefix
            assert_same_pair(counterfactual_pair(graph, INDEX, step, chains=chains, nodes=nodes),
                             expected)
        # Nothing removed afterwards: the shared prefix is as it was.
        assert_same_pair(counterfactual_pair(graph, INDEX, step),
                         reasoning_pair(example_graph(), INDEX, step))


def test_a_new_graph_never_reads_another_graph_s_prefix() -> None:
    # Each graph lives only for its turn, so later ones may reuse an id of an earlier one.
    for name in ["example", "no_divergence", "single", "repeat"] * 3:
        graph = small_graphs()[name]
        last = len(graph.graph["window"]) - 1
        assert_same_pair(counterfactual_pair(graph, INDEX, last),
                         reasoning_pair(graph, INDEX, last))


@pytest.mark.parametrize("chains, nodes", [(("c1", "c3"), ("s2", "s6", "dc1.2")),
                                           ((), ("s2", "s5", "s0")),
                                           (("c2",), ("c22", "s7", "s4"))])
def test_a_removal_s_input_does_not_depend_on_the_order_of_its_ids(
        chains: tuple[str, ...], nodes: tuple[str, ...]) -> None:
    graph = example_graph()
    expected = counterfactual_pair(graph, INDEX, 7, chains=chains, nodes=nodes)
    for chain_order in itertools.permutations(chains):
        for node_order in itertools.permutations(nodes):
            got = counterfactual_pair(graph, INDEX, 7, chains=chain_order, nodes=node_order)
            for name in TENSOR_FIELDS:   # what the model reads (node ids are bookkeeping)
                assert torch.equal(got.rea[name], expected.rea[name]), name
                assert torch.equal(got.div[name], expected.div[name]), name
            assert got.session == expected.session


class CountingSimilarity:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def encoder_scores(self, text: str) -> np.ndarray:
        self.asked.append(text)
        return np.array([len(text), 0.5, 0.25], dtype=np.float32)


def test_cached_similarity_asks_once_per_recent_text_and_returns_the_same_scores() -> None:
    inner = CountingSimilarity()
    cached = CachedSimilarity(inner, size=2)
    first = cached.encoder_scores("space adventure")
    assert first.dtype == np.float64
    assert np.array_equal(first, inner.encoder_scores("space adventure").astype(np.float64))
    inner.asked.clear()
    assert cached.encoder_scores("space adventure") is first
    assert inner.asked == []
    with pytest.raises(ValueError):   # shared between callers: read-only
        first[0] = 0.0
    cached.encoder_scores("romance")
    cached.encoder_scores("war drama")        # the oldest ("space adventure") goes
    cached.encoder_scores("space adventure")
    assert inner.asked == ["romance", "war drama", "space adventure"]
