"""A batch interrupted by a backend failure, then rerun, stores the graphs an uninterrupted run stores
(issue #21's bar: same model, KB on), and its KB holds the same entries, none twice.

The real SmolLM2 in process; the interruption is a wrapper that raises BackendUnavailable a few calls
into the second session, as a pool whose servers all died would. Window 3 and two users keep it short.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from models.data import Dataset
from reasoning.backend import (BackendUnavailable, ContinuationScores, LLMBackend, LLMRequest,
                               LLMResponse, TokenCallback)
from reasoning.backend_info import BackendInfo
from reasoning.batch import BatchOutcome, BatchSummary, build_batch
from reasoning.bench import _content
from reasoning.builder import GraphBuilder
from reasoning.diverge import training_co_watch
from reasoning.kb import KnowledgeBase
from reasoning.localizer import IntentLocalizer
from reasoning.store import GraphStore
from reasoning import verify
from reasoning.verify import training_popularity
from tests.reasoning.conftest import MakeConfig

pytestmark = [pytest.mark.llm, pytest.mark.slow]
USERS = ["196", "186"]


class DiesAfter(LLMBackend):
    """The real backend until ``arm(calls)``; then, after that many more calls, every call fails."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self._left: int | None = None
        self._lock = threading.Lock()
        self.failed_calls = 0

    def arm(self, calls: int) -> None:
        self._left = calls

    def _tick(self) -> None:
        with self._lock:
            if self._left is None:
                return
            if self._left <= 0:
                self.failed_calls += 1
                raise BackendUnavailable("no LLM server answered (injected by the test)")
            self._left -= 1

    @property
    def model_identity(self) -> str:
        return self.inner.model_identity

    def info(self) -> BackendInfo:
        return self.inner.info()

    def complete(self, request: LLMRequest, on_token: TokenCallback | None = None) -> LLMResponse:
        self._tick()
        return self.inner.complete(request, on_token)

    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        self._tick()
        return self.inner.score_continuations(prefix, continuations)

    def prime(self, messages: list[list[dict[str, str]]]) -> None:
        self.inner.prime(messages)


def _run(backend: LLMBackend, dataset: Dataset, config: Any, localizer: IntentLocalizer,
         progress: Any = None) -> tuple[BatchSummary, GraphStore, KnowledgeBase]:
    # Each run stands for its own `reasonrec build-graphs` process: verification's in-memory
    # option priors (kept for builds without a KB) would otherwise answer in place of the KB and
    # keep those entries out of a later run's KB.
    verify.clear_option_prior_cache()
    kb = KnowledgeBase(config.kb_path)
    builder = GraphBuilder(backend, dataset.catalogue, config, kb, localizer,
                           popularity=training_popularity([dataset.history(u) for u in dataset.user_ids],
                                                          len(dataset.catalogue)),
                           co_watch=training_co_watch(dataset))
    store = GraphStore(config.graphs_dir)
    summary = build_batch(builder, dataset, store, USERS, progress=progress)
    kb.flush_counters()
    return summary, store, kb


def test_a_rerun_after_an_interruption_equals_an_uninterrupted_run(
        ml100k: Dataset, llama_backend: LLMBackend, make_config: MakeConfig,
        ml100k_localizer: IntentLocalizer, tmp_path: Path) -> None:
    interrupted = make_config(l_tru=3)
    dying = DiesAfter(llama_backend)
    # After the first graph is stored, let the second session make 4 calls (their answers go
    # into the KB), then fail every call.
    first, store, kb = _run(dying, ml100k, interrupted, ml100k_localizer,
                            progress=lambda s: dying.arm(4) if s.built == 1 else None)
    assert first.outcome is BatchOutcome.STOPPED and (first.built, first.failed) == (1, 1)
    assert dying.failed_calls == 1 and store.users() == [USERS[0]]
    partial_entries = kb.stats()["entries"]
    kb.close()

    dying.arm(10 ** 9)   # the servers are back
    rerun, store, kb = _run(dying, ml100k, interrupted, ml100k_localizer)
    assert (rerun.outcome, rerun.skipped, rerun.built) == (BatchOutcome.COMPLETE, 1, 1)
    assert rerun.kb_hits >= 4   # the failed session's committed answers are reused, not asked again
    rerun_kb = kb.stats()
    kb.close()

    fresh_config = make_config(l_tru=3, data_dir=str(tmp_path / "fresh"))
    assert fresh_config.kb_path != interrupted.kb_path
    fresh, fresh_store, fresh_kb = _run(llama_backend, ml100k, fresh_config, ml100k_localizer)
    assert (fresh.outcome, fresh.built) == (BatchOutcome.COMPLETE, 2)
    fresh_stats = fresh_kb.stats()
    fresh_kb.close()

    for user in USERS:
        resumed, uninterrupted = store.load(user), fresh_store.load(user)
        assert resumed is not None and uninterrupted is not None
        assert _content(resumed) == _content(uninterrupted), f"user {user}'s graphs differ"
    # No answer lost or stored twice: the same entries per kind; the interrupted run's KB
    # already held some of them.
    assert rerun_kb["entries"] == fresh_stats["entries"] > partial_entries
    assert {k: v["entries"] for k, v in rerun_kb["kinds"].items()} == \
        {k: v["entries"] for k, v in fresh_stats["kinds"].items()}
    # Every lookup of the uninterrupted run happened once in the interrupted run plus its rerun
    # (the failed call itself never reached the KB's counters).
    assert rerun_kb["hits"] + rerun_kb["misses"] >= fresh_stats["hits"] + fresh_stats["misses"]
