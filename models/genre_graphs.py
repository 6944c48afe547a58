"""An LLM-free stand-in for the reasoning graph: the same schema, built from genres and co-views.

Until LLM graphs exist for the fused sample (issue #3's ``build-graphs``), this
source lets fusion, the bench and the explanations run end to end, and later
it is the rule-based control an LLM graph has to beat. It follows LLMRG's
four stages with fixed rules instead of LLM answers:

* **intent** of an item: the vocabulary intent (``assets/prompts/intents.toml``)
  whose genres overlap the item's most (file order breaks ties);
* **chains**: an item joins the most recent chain with its intent, else starts
  one (the chain stage's own fallback rule);
* **verification**: a chain's score is the mean genre Jaccard similarity of
  its consecutive items; ``verified`` at ``>= tau``, else ``rejected``; a
  one-item chain has nothing to check (``unverified``);
* **divergent extension**: from the end of each chain not rejected, the K
  intents most often watched next after the chain's intent, each localized to
  the r items most often watched within 3 steps after the chain's last item
  (training histories, the user's own history subtracted, so a training target
  of the fused model never votes for itself), among items the user had not
  seen by then. The weight is the co-view count over the list's largest.

Reasons are short templated texts. Graphs say ``backend: genre-heuristic`` in
their build log, and the source's label says "no LLM": no report built on
them can pass for an LLM result.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import networkx as nx
import numpy as np

from models.data import Dataset
from reasoning.graph import BuildLog, ChainRecord, ChainStatus, new_graph
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                  add_session_item, set_chain_verdict)
from reasoning.prompts import IntentVocabulary, load_intents

COVIEW_SPAN = 3


def _jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


class GenreGraphSource:
    """Deterministic reasoning graphs from genres and co-views (no LLM).

    Args:
        dataset: the dataset (catalogue genres, histories).
        train: the training part of each history (``LeaveOneOut.train``), the
            only interactions the co-view counts may see.
        window: ``l_tru``, items before the test target.
        k_intents: K, next intents per chain end.
        r_items: r, items per intent.
        tau: verification threshold.
        vocabulary: intents (default: the reasoning builder's vocabulary).
    """

    label = "genre-heuristic (no LLM)"

    def __init__(self, dataset: Dataset, train: Sequence[np.ndarray], *, window: int = 10,
                 k_intents: int = 3, r_items: int = 5, tau: float = 0.5,
                 vocabulary: IntentVocabulary | None = None) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.dataset = dataset
        self.window = window
        self.k_intents = k_intents
        self.r_items = r_items
        self.tau = tau
        self.vocabulary = vocabulary or load_intents()
        self.intent_of = [""] + [self._intent(item.genres)
                                 for item in dataset.catalogue.items[1:]]
        self._intent_items: dict[str, set[int]] = defaultdict(set)
        for item in dataset.catalogue.items[1:]:
            for label in self.vocabulary.options_for(item.genres):
                self._intent_items[label].add(item.index)
        self._coview: dict[int, Counter[int]] = defaultdict(Counter)
        self._next_intent: dict[str, Counter[str]] = defaultdict(Counter)
        self._train = list(train)
        for history in self._train:
            self._count(history, self._coview, self._next_intent)

    def _intent(self, genres: Sequence[str]) -> str:
        wanted = {g.lower() for g in genres}
        best = max(self.vocabulary.intents,
                   key=lambda i: len(wanted & {g.lower() for g in i.genres}))
        return best.label

    def _count(self, history: np.ndarray, coview: dict[int, Counter[int]],
               next_intent: dict[str, Counter[str]]) -> None:
        items = [int(i) for i in history]
        for pos, item in enumerate(items):
            for later in items[pos + 1: pos + 1 + COVIEW_SPAN]:
                coview[item][later] += 1
            if pos + 1 < len(items):
                next_intent[self.intent_of[item]][self.intent_of[items[pos + 1]]] += 1

    def get(self, user_id: str) -> nx.DiGraph | None:
        """The graph of the ``window`` items before the user's test target; None if too short."""
        user = self.dataset.user_index(user_id)
        history = self.dataset.histories[user]
        if len(history) < 3:
            return None
        end = len(history) - 1                       # the test target's position
        start = max(0, end - self.window)
        own: dict[int, Counter[int]] = defaultdict(Counter)
        self._count(self._train[user], own, defaultdict(Counter))
        return self._build(str(user_id), history, start, end, own)

    def _build(self, user_id: str, history: np.ndarray, start: int, end: int,
               own: dict[int, Counter[int]]) -> nx.DiGraph:
        catalogue = self.dataset.catalogue
        window = [int(i) for i in history[start:end]]
        graph = new_graph(self.dataset.name, user_id, window,
                          [catalogue[i].item_id for i in window], int(history[end]),
                          target_position=end)
        chains: list[ChainRecord] = []
        for step, item in enumerate(window):
            if step:
                # Before the chain edge: a DiGraph has one edge per pair, and when a
                # chain links neighbours its edge must stay a chain edge (the window
                # order itself is rebuilt from the steps, see models.graph_data).
                add_sequence_edge(graph, step)
            intent = self.intent_of[item]
            chain = next((c for c in reversed(chains) if c.intent == intent), None)
            if chain is None:
                chain = ChainRecord(id=f"c{len(chains) + 1}", intent=intent, steps=[],
                                    item_indices=[])
                chains.append(chain)
                reason = "first item of its intent"
            else:
                reason = f"more {intent}"
                prev = chain.steps[-1]
                shared = sorted(set(catalogue[window[prev]].genres) & set(catalogue[item].genres))
                add_chain_edge(graph, prev, step, chain=chain.id, intent=intent,
                               reason=f"{intent}: {', '.join(shared) or 'same intent'}")
            chain.steps.append(step)
            chain.item_indices.append(item)
            add_session_item(graph, step, item_index=item, item_id=catalogue[item].item_id,
                             title=catalogue[item].display_name, intent=intent, chain=chain.id,
                             reason=reason)
        for chain in chains:
            self._verify(graph, chain, window)
            if chain.status != ChainStatus.REJECTED:
                self._diverge(graph, chain, history, start, own)
        graph.graph["chains"] = chains
        graph.graph["build_log"] = BuildLog(
            backend={"backend": "genre-heuristic", "llm": False},
            settings={"l_tru": self.window, "k_intents": self.k_intents,
                      "r_items": self.r_items, "tau": self.tau},
            prompt_versions={"intents": self.vocabulary.version})
        return graph

    def _verify(self, graph: nx.DiGraph, chain: ChainRecord, window: list[int]) -> None:
        catalogue = self.dataset.catalogue
        if len(chain.steps) > 1:
            pairs = zip(chain.item_indices[:-1], chain.item_indices[1:])
            chain.score = float(np.mean([_jaccard(catalogue[a].genres, catalogue[b].genres)
                                         for a, b in pairs]))
            chain.status = (ChainStatus.VERIFIED if chain.score >= self.tau
                            else ChainStatus.REJECTED)
        set_chain_verdict(graph, chain)

    def _diverge(self, graph: nx.DiGraph, chain: ChainRecord, history: np.ndarray, start: int,
                 own: dict[int, Counter[int]]) -> None:
        catalogue = self.dataset.catalogue
        step = chain.steps[-1]
        last = chain.item_indices[-1]
        seen = {int(i) for i in history[: start + step + 1]}   # known at the chain's end only
        counts = self._coview[last] - own[last]
        intents = [label for label, _ in self._next_intent[chain.intent].most_common()
                   ][: self.k_intents]
        for n, intent in enumerate(intents, start=1):
            pool = self._intent_items[intent] - seen
            ranked = sorted(pool, key=lambda i: (-counts[i], i))[: self.r_items]
            ranked = [i for i in ranked if counts[i] > 0]
            if not ranked:
                continue
            top = counts[ranked[0]]
            intent_id = add_intent(graph, chain=chain.id, n=n, end_step=step, text=intent,
                                   reason=f"often next after {chain.intent}",
                                   edge_reason=f"viewers of {chain.intent} often turn to {intent}")
            for item in ranked:
                add_candidate(graph, intent_id, item_index=item, item_id=catalogue[item].item_id,
                              title=catalogue[item].display_name, weight=counts[item] / top,
                              reason=f"watched soon after {catalogue[last].display_name} "
                                     f"({counts[item]} times)")
