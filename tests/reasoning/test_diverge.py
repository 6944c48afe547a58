"""Divergent extension: candidates skip the user's history, and their co-watch support."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from models.data import Dataset
from models.evidence import CoWatchIndex
from models.protocol import leave_one_out
from reasoning.builder import session_window
from reasoning.diverge import (candidate_support, candidate_support_share, chain_candidates,
                               localize, training_co_watch)
from reasoning.graph import ChainRecord, graph_from_json, graph_to_json, new_graph
from reasoning.graph_nodes import (add_candidate, add_intent, add_sequence_edge,
                                   add_session_item)
from reasoning.localizer import IntentLocalizer


class _NoKB:
    """An asker without a knowledge base (localize only reads and writes the KB)."""

    def __init__(self) -> None:
        self.stored: list[Any] = []

    def kb_get(self, stage: str, kind: str, version: str, fields: dict[str, Any]) -> None:
        return None

    def kb_put(self, kind: str, version: str, fields: dict[str, Any], value: Any) -> None:
        self.stored.append((fields, value))


class _Unused:
    identity = "unused"

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("a lexical-only localizer encoded")


def test_session_window_knows_the_whole_history_before_it(ml100k: Dataset) -> None:
    history = ml100k.history("196")
    session = session_window(ml100k, "196", 3)
    assert len(session.items) == 3 and session.target.index == history[-1]
    # Everything before the window (the builder adds the window up to each chain end).
    assert session.seen == frozenset(int(i) for i in history[:-4])
    earlier = session_window(ml100k, "196", 3, position=10)
    assert earlier.seen == frozenset(int(i) for i in history[:7])     # never the future


def test_localize_skips_a_long_history_beyond_the_stored_ranking(ml100k: Dataset,
                                                                 tmp_path: Path) -> None:
    localizer = IntentLocalizer(ml100k.catalogue, _Unused(), tmp_path, lexical_weight=1.0)
    ranked = localizer.rank("Star Trek", 20)
    seen = {index for index, _ in ranked[:8]}           # the user saw the 8 best matches
    asker = _NoKB()
    found = localize(asker, localizer, "Star Trek", 3, seen, max_excluded=2)
    assert [i for i, _ in found] == [i for i, _ in ranked[8:11]]
    # The stored ranking ignores the history (r + window length), so sessions share it.
    assert [len(value) for _, value in asker.stored] == [5]


def test_co_watch_support_counts_training_interactions_only(ml100k: Dataset) -> None:
    split = leave_one_out(ml100k)
    co_watch = training_co_watch(ml100k)
    np.testing.assert_array_equal(co_watch.first, CoWatchIndex(split.train, ml100k.n_items).first)
    # A user's test target lends no support unless it was also watched in training.
    for user, target in zip(split.test.users[:50], split.test.targets[:50]):
        assert (co_watch.last[user, target] >= 0) == (target in split.train[user])


def test_candidate_support_is_lift_above_one_after_a_chain_item() -> None:
    # Items 1 and 2 are watched together by users 0-2, item 3 by everyone, item 4 alone.
    train = [np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([3, 4]),
             np.array([3, 5]), np.array([3, 5])]
    co_watch = CoWatchIndex(train, 5)
    support = candidate_support(co_watch, [1], 2)
    assert support is not None and support.lift == (3 / 3) / (3 / 6)        # 2.0
    assert candidate_support(co_watch, [1], 3) is None                       # lift 1: everyone
    assert candidate_support(co_watch, [2], 1) is None                       # 1 is before 2
    assert candidate_support(co_watch, [4, 1], 2) is not None                # any chain item
    assert candidate_support(co_watch, [1], 5) is None                       # never together


def test_candidate_support_share_reads_each_chains_candidates() -> None:
    graph = new_graph("toy", "u", [1, 3], ["1", "3"], None)
    for step, (item, chain) in enumerate(((1, "c1"), (3, "c2"))):
        add_session_item(graph, step, item_index=item, item_id=str(item), title=f"Movie {item}",
                         intent="x", chain=chain, reason="")
    add_sequence_edge(graph, 1)
    graph.graph["chains"] = [ChainRecord(id="c1", intent="x", steps=[0], item_indices=[1],
                                         status="verified"),
                             ChainRecord(id="c2", intent="y", steps=[1], item_indices=[3],
                                         status="verified")]
    for chain, end, candidates in (("c1", 0, (2, 5)), ("c2", 1, (2,))):
        intent = add_intent(graph, chain=chain, n=1, end_step=end, text="next")
        for index in candidates:
            add_candidate(graph, intent, item_index=index, item_id=str(index),
                          title=f"Movie {index}", weight=0.5)
    assert chain_candidates(graph) == [((1,), 2), ((1,), 5), ((3,), 2)]
    # The same pairs once the graph has been through its JSON form.
    assert chain_candidates(graph_from_json(graph_to_json(graph))) == chain_candidates(graph)
    train = [np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([3, 4]),
             np.array([3, 5]), np.array([3, 5])]
    # (1 -> 2) lift 2; (1 -> 5) never together; (3 -> 2): 3 is watched after 2
    assert candidate_support_share([graph], CoWatchIndex(train, 5)) == 1 / 3
    assert candidate_support_share([nx.DiGraph()], CoWatchIndex(train, 5)) is None


def test_supported_candidates_come_first_among_the_nearest(ml100k: Dataset, tmp_path: Path) -> None:
    localizer = IntentLocalizer(ml100k.catalogue, _Unused(), tmp_path, lexical_weight=1.0)
    ranked = [i for i, _ in localizer.rank("Star Trek", 20)]
    backed = {ranked[4], ranked[7], ranked[12]}   # 7 and 12 lie beyond the pool
    found = localize(_NoKB(), localizer, "Star Trek", 3, set(), max_excluded=0,
                     supported=lambda index: index in backed)
    # The pool is the 2r = 6 nearest: the backed items inside it lead, then the nearest others.
    assert [i for i, _ in found] == [ranked[4], ranked[0], ranked[1]]
    plain = localize(_NoKB(), localizer, "Star Trek", 3, set(), max_excluded=0)
    assert [i for i, _ in plain] == ranked[:3]
