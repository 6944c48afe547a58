"""The reasoning-graph builder: the four LLMRG stages over one session window.

Order of work for one window (every LLM question looks in the knowledge base
first; see :mod:`reasoning.structured`):

1. **chain** (:mod:`reasoning.chain`): an intent per item, then which chain
   each item continues;
2. **verify** (:mod:`reasoning.verify`): mask items of each chain, score it,
   mark it verified or rejected;
3. **diverge** (:mod:`reasoning.diverge`): from the last item of each
   verified chain, up to K free-text next intents, each **localized** to r
   catalogue items.

The result is a :mod:`reasoning.graph` graph whose build log holds the calls,
KB hits and misses, tokens, seconds per stage, and the pieces the LLM failed
to produce (with the fallback used).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import networkx as nx

from models.data import Catalogue, Dataset, Item
from models.data.digest import json_digest
from reasoning.backend import LLMBackend
from reasoning.chain import Chain, Link, build_chains, viewer_text
from reasoning.config import ReasoningConfig
from models.evidence import CoWatchIndex
from reasoning.diverge import LOCALIZE_STAGE, candidate_support, localize, next_intents, training_co_watch
from reasoning.diverge import STAGE as DIVERGE_STAGE
from reasoning.graph import BuildLog, ChainRecord, new_graph
from reasoning.graph_nodes import (add_candidate, add_chain_edge, add_intent, add_sequence_edge,
                                  add_session_item)
from reasoning.kb import KnowledgeBase
from reasoning.localizer import IntentLocalizer
from reasoning.prompts import (SCORED_PROMPTS, STAGE_PROMPTS, IntentVocabulary, load_intents,
                               load_prompt, prompt_versions)
from reasoning.structured import Asker, StageTokenCallback
from reasoning.verify import STAGE as VERIFY_STAGE
from reasoning.verify import (Verdict, VerifySetup, popularity_ranks, training_popularity,
                              verify_chain)

CHAIN_STAGE = "chain"


class EmptySessionError(ValueError):
    """The window holds no item: there is nothing to reason about."""


@dataclass(frozen=True)
class SessionWindow:
    """What one graph is built from.

    Attributes:
        dataset: dataset name.
        user: the user token.
        items: the window, oldest first.
        target: the item right after the window (``None`` at the end of the
            history); recorded on the graph, never shown to the LLM.
        target_position: history position of the target (window end).
        viewer: the user's attributes as the prompts show them.
        seen: catalogue indices of every item before the window: divergent
            candidates skip these and the window up to the chain end they extend.
    """

    dataset: str
    user: str
    items: tuple[Item, ...]
    target: Item | None
    target_position: int
    viewer: str
    seen: frozenset[int] = frozenset()


def session_window(dataset: Dataset, user: str, l_tru: int, position: int | None = None) -> SessionWindow:
    """The last ``l_tru`` items before history ``position`` (default: the test target, ``h[-1]``).

    The default window is what issue #4's fused models read: its prefix graphs
    serve the training, validation (``h[-2]``) and test (``h[-1]``) targets.

    Raises:
        KeyError: unknown user (the message names it).
        ValueError: ``position`` outside the history.
        EmptySessionError: no item before ``position``.
    """
    history = dataset.history(user)
    if position is None:
        position = len(history) - 1
    if not 0 <= position <= len(history):
        raise ValueError(f"position {position} is outside user {user}'s history "
                         f"(0..{len(history)})")
    if l_tru < 1:
        raise ValueError(f"window length must be at least 1, got {l_tru}")
    start = max(0, position - l_tru)
    if start == position:
        raise EmptySessionError(f"user {user} has no item before history position {position}: "
                                f"nothing to reason about")
    catalogue = dataset.catalogue
    items = tuple(catalogue[int(i)] for i in history[start:position])
    target = catalogue[int(history[position])] if position < len(history) else None
    return SessionWindow(dataset=dataset.name, user=str(user), items=items, target=target,
                         target_position=position,
                         viewer=viewer_text(dataset.user_attributes.get(str(user), {})),
                         seen=frozenset(int(i) for i in history[:start]))


class GraphBuilder:
    """Builds reasoning graphs with one backend, KB and localizer (thread-safe per call).

    Args:
        backend: the LLM.
        catalogue: the items (distractors and localization draw from it).
        config: stage settings.
        kb: the knowledge base, or ``None`` for no reuse.
        localizer: maps divergent intents to items; ``None`` skips localization
            (intent nodes are still added).
        vocabulary: the intent labels of stage 1 (default ``assets/prompts/intents.toml``).
        popularity: training interactions per catalogue index (see
            :func:`reasoning.verify.training_popularity`); verification draws
            distractors of the masked item's popularity. ``None``: index neighbours.
        co_watch: training co-watch counts (:func:`reasoning.diverge.training_co_watch`);
            divergent candidates that the chain's viewers went on to watch come first
            among the nearest ones. ``None``: nearest by text alone.
    """

    def __init__(self, backend: LLMBackend, catalogue: Catalogue, config: ReasoningConfig,
                 kb: KnowledgeBase | None, localizer: IntentLocalizer | None,
                 vocabulary: IntentVocabulary | None = None,
                 popularity: Any = None, co_watch: CoWatchIndex | None = None) -> None:
        self.backend = backend
        self.catalogue = catalogue
        self.config = config
        self.kb = kb
        self.localizer = localizer
        self.vocabulary = vocabulary or load_intents()
        self.popularity = popularity
        self.co_watch = co_watch
        self.verify_setup = VerifySetup(
            ranks=None if popularity is None else popularity_ranks(popularity, len(catalogue)))
        self._settings: dict[str, Any] | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """Everything a graph depends on, plus ``key``: a short hash of it all.

        Two graphs with the same key were built the same way; the graph store
        rebuilds a user whose stored graph has another key.
        """
        if self._settings is None:
            c = self.config
            values = {"model": self.backend.model_identity, "prompts": prompt_versions(),
                      "l_tru": c.l_tru, "k_intents": c.k_intents, "r_items": c.r_items,
                      "tau": c.tau, "masks_per_chain": c.masks_per_chain,
                      "n_distractors": c.n_distractors, "seed": c.seed,
                      "temperature": c.temperature, "text_limit": c.text_limit,
                      "localizer": self.localizer.identity if self.localizer else None,
                      "distractors_by_popularity": self.verify_setup.ranks is not None,
                      "candidates_by_co_watch": self.co_watch is not None}
            values["key"] = json_digest(values, compact=True)
            self._settings = values
        return self._settings

    def with_kb(self, kb: KnowledgeBase | Any | None) -> GraphBuilder:
        """A builder sharing this one's LLM, localizer and settings but reading ``kb``.

        The app wraps the shared KB per build to watch its lookups live; the
        settings (and their key) are the same, so they are not recomputed.
        """
        twin = GraphBuilder(self.backend, self.catalogue, self.config, kb, self.localizer,
                            self.vocabulary, self.popularity, self.co_watch)
        twin._settings = self.settings
        return twin

    def warm_up(self, encoder: bool = False) -> dict[str, float]:
        """Do the one-time work before the first session; returns seconds per part.

        Reads each stage prompt's fixed head (the chat turns of generated stages, the raw
        task and example of scored ones) into the LLM's prompt cache, loads
        (or computes and caches) the catalogue's item vectors, and with
        ``encoder`` loads the text encoder that new intent texts need.
        """
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        heads = [load_prompt(name).head({"k": self.config.k_intents} if name == "diverge" else None)
                 for name in STAGE_PROMPTS if name not in SCORED_PROMPTS]
        self.backend.prime(heads)
        self.backend.prime_scored([load_prompt(name).scored_head() for name in SCORED_PROMPTS])
        seconds["prompt_cache"] = time.perf_counter() - started
        if self.localizer is not None and self.localizer.uses_encoder:
            started = time.perf_counter()
            self.localizer.ensure_item_vectors()
            seconds["item_vectors"] = time.perf_counter() - started
            if encoder:
                started = time.perf_counter()
                self.localizer.encoder_scores("warm-up")
                seconds["encoder"] = time.perf_counter() - started
        return seconds

    def build(self, session: SessionWindow, on_token: StageTokenCallback | None = None) -> nx.DiGraph:
        """The reasoning graph of ``session``.

        Raises:
            EmptySessionError: the window is empty.
        """
        if not session.items:
            raise EmptySessionError(f"user {session.user}: the session window is empty")
        started = time.perf_counter()
        log = BuildLog(backend=self.backend.info().to_dict(), prompt_versions=prompt_versions(),
                       settings=self.settings)
        asker = Asker(self.backend, self.kb, self.config, log, on_token)
        items = list(session.items)
        config = self.config

        with _timed(log, CHAIN_STAGE):
            chains, links = build_chains(asker, items, self.vocabulary)
        with _timed(log, VERIFY_STAGE):
            verdicts = {c.id: verify_chain(asker, c, items, self.catalogue, config, self.verify_setup)
                        for c in chains}
        extensions = self._diverge(asker, log, chains, verdicts, items, session.seen)

        graph = new_graph(session.dataset, session.user, [i.index for i in items],
                          [i.item_id for i in items],
                          session.target.index if session.target is not None else None,
                          target_position=session.target_position)
        _add_session(graph, items, links, verdicts)
        _add_extensions(graph, chains, extensions, self.catalogue)
        graph.graph["chains"] = [
            ChainRecord(id=c.id, intent=c.intent, steps=list(c.steps),
                        item_indices=[items[s].index for s in c.steps],
                        score=verdicts[c.id].score, status=verdicts[c.id].status,  # type: ignore[arg-type]
                        masks=verdicts[c.id].masks)
            for c in chains]
        if self.kb is not None:
            self.kb.flush_counters()
        log.wall_seconds = time.perf_counter() - started
        graph.graph["build_log"] = log
        return graph

    def _supported(self, chain: Chain, items: list[Item]) -> Callable[[int], bool] | None:
        """Whether a candidate has co-watch support from ``chain``'s items (None: not used)."""
        co_watch = self.co_watch
        if co_watch is None:
            return None
        chain_items = [items[s].index for s in chain.steps]
        return lambda index: candidate_support(co_watch, chain_items, index) is not None

    def _diverge(self, asker: Asker, log: BuildLog, chains: list[Chain], verdicts: dict[str, Verdict],
                 items: list[Item], seen: frozenset[int] = frozenset()
                 ) -> dict[str, list[tuple[str, list[tuple[int, float]]]]]:
        """Per verified chain: ``[(intent text, [(catalogue index, weight), ...]), ...]``.

        Candidates skip what the user saw up to the chain's end: the history before
        the window (``seen``) and the window (``items``) up to that step. Later window items may
        be candidates (the user went on to watch them); ``prefix_graph`` drops them
        from every prefix that already holds them, so the whole graph's candidates
        are unseen at its target and a training prefix's target can be one.
        """
        config = self.config
        out: dict[str, list[tuple[str, list[tuple[int, float]]]]] = {}
        for chain in chains:
            if verdicts[chain.id].status != "verified":
                continue
            end = items[chain.steps[-1]]
            window = {item.index for item in items[: chain.steps[-1] + 1]} | seen
            with _timed(log, DIVERGE_STAGE):
                texts = next_intents(asker, end, chain.intent, config.k_intents, config.text_limit)
            matches = []
            with _timed(log, LOCALIZE_STAGE):
                for text in texts:
                    found = (localize(asker, self.localizer, text, config.r_items, window,
                                      config.l_tru, self._supported(chain, items))
                             if self.localizer is not None else [])
                    if not found and self.localizer is not None:
                        asker.drop(DIVERGE_STAGE, f"intent {text[:40]!r} of {chain.id}",
                                   "no catalogue item matches it", "intent kept without items")
                    matches.append((text, found))
            out[chain.id] = matches
        return out


@contextmanager
def _timed(log: BuildLog, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        log.stage(stage).seconds += time.perf_counter() - started


def _add_session(graph: nx.DiGraph, items: list[Item], links: list[Link],
                 verdicts: dict[str, Verdict]) -> None:
    """Session item nodes, sequence edges and chain edges.

    A ``DiGraph`` holds one edge per pair: when a chain joins two consecutive
    window items, its ``chain`` edge also stands for their ``sequence`` edge
    (consumers rebuild window order from the nodes' steps).
    """
    for link, item in zip(links, items):
        verdict = verdicts[link.chain]
        add_session_item(graph, link.step, item_index=item.index, item_id=item.item_id,
                         title=item.title, intent=link.intent, chain=link.chain,
                         reason=link.reason, score=verdict.score, status=verdict.status)
        if link.step:
            add_sequence_edge(graph, link.step)
    chain_intent = {}
    for link in links:
        chain_intent.setdefault(link.chain, link.intent)
        if link.previous_step is None:
            continue
        verdict = verdicts[link.chain]
        add_chain_edge(graph, link.previous_step, link.step, chain=link.chain, reason=link.reason,
                       intent=chain_intent[link.chain], score=verdict.score,
                       status=verdict.status)


def _add_extensions(graph: nx.DiGraph, chains: list[Chain],
                    extensions: dict[str, list[tuple[str, list[tuple[int, float]]]]],
                    catalogue: Catalogue) -> None:
    """Intent and candidate nodes, stamped with the step of the chain end they extend."""
    for chain in chains:
        end = chain.steps[-1]
        for n, (text, matches) in enumerate(extensions.get(chain.id, []), start=1):
            intent_id = add_intent(graph, chain=chain.id, n=n, end_step=end, text=text)
            for index, weight in matches:
                item = catalogue[index]
                add_candidate(graph, intent_id, item_index=index, item_id=item.item_id,
                              title=item.title, weight=weight)


def open_builder(dataset: Dataset, config: ReasoningConfig, *, kb: bool | None = None,
                 backend: LLMBackend | None = None) -> GraphBuilder:
    """A builder for ``dataset`` with the configured backend, KB and localizer.

    Args:
        kb: use the knowledge base (default ``config.kb_enabled``).
        backend: an already open backend (default: :func:`reasoning.backend.open_backend`).
    """
    from reasoning.backend import open_backend
    from reasoning.localizer import open_localizer

    backend = backend or open_backend(config)
    use_kb = config.kb_enabled if kb is None else kb
    store = KnowledgeBase(config.kb_path) if use_kb else None
    localizer = open_localizer(dataset, config)
    popularity = training_popularity([dataset.history(u) for u in dataset.user_ids],
                                     len(dataset.catalogue))
    return GraphBuilder(backend, dataset.catalogue, config, store, localizer, popularity=popularity,
                        co_watch=training_co_watch(dataset))
