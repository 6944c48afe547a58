"""Failure paths of ``reasoning.batch.build_batch`` (a fake builder; the real-server runs are in
test_pool_servers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.data import Dataset
from reasoning.backend import BackendFailure, BackendUnavailable, LLMTimeout
from reasoning.batch import BatchOutcome, build_batch
from reasoning.graph import BuildLog, new_graph
from reasoning.store import GraphStore
from reasoning.structured import Asker
from tests.reasoning.conftest import MakeConfig
from tests.reasoning.fakes import ScriptedBackend
from tests.reasoning.test_structured import _question

USERS = ["196", "186", "22", "244"]


class FakeBuilder:
    """Builds an empty graph per user, or raises what ``failures`` names for that user."""

    def __init__(self, config: Any, failures: dict[str, Exception]) -> None:
        self.config = config
        self.failures = failures
        self.backend = ScriptedBackend([])
        self.settings = {"key": "k1"}
        self.built: list[str] = []

    def build(self, session: Any) -> Any:
        if session.user in self.failures:
            raise self.failures[session.user]
        self.built.append(session.user)
        graph = new_graph(session.dataset, session.user, [i.index for i in session.items],
                          [i.item_id for i in session.items], None,
                          target_position=session.target_position)
        graph.graph["chains"] = []
        graph.graph["build_log"] = BuildLog(llm_calls=3, kb_hits=1, kb_misses=2,
                                            settings=self.settings)
        return graph


def test_a_failed_session_is_not_stored_and_the_rest_are(make_config: MakeConfig, ml100k: Dataset,
                                                          tmp_path: Path) -> None:
    store = GraphStore(tmp_path / "graphs")
    builder = FakeBuilder(make_config(), {"186": LLMTimeout("no complete answer within 60 s")})
    summary = build_batch(builder, ml100k, store, USERS)  # type: ignore[arg-type]
    assert (summary.built, summary.failed, summary.skipped) == (3, 1, 0)
    assert summary.outcome is BatchOutcome.SESSIONS_FAILED and store.users() == ["196", "22", "244"]
    assert summary.llm_calls == 9 and summary.kb_hit_rate == pytest.approx(1 / 3)
    assert "user 186: no complete answer" in summary.failures[0]
    # The rerun skips the stored graphs and builds the one that failed.
    builder.failures.clear()
    again = build_batch(builder, ml100k, store, USERS)  # type: ignore[arg-type]
    assert (again.skipped, again.built, again.outcome) == (3, 1, BatchOutcome.COMPLETE)


def test_no_server_stops_the_batch(make_config: MakeConfig, ml100k: Dataset, tmp_path: Path) -> None:
    store = GraphStore(tmp_path / "graphs")
    builder = FakeBuilder(make_config(), {"186": BackendUnavailable("no LLM server answered")})
    summary = build_batch(builder, ml100k, store, USERS)  # type: ignore[arg-type]
    assert summary.outcome is BatchOutcome.STOPPED
    assert (summary.built, summary.failed, summary.not_started) == (1, 1, 2)
    assert builder.built == ["196"] and store.users() == ["196"]
    payload = summary.to_json()
    assert payload["outcome"] == "stopped" and payload["finished"] == 1 and payload["remaining"] == 3


def test_a_backend_failure_inside_a_stage_is_raised_not_dropped(make_config: MakeConfig) -> None:
    for failure in (LLMTimeout("no complete answer within 60 s"), BackendFailure("llama.cpp crashed")):
        log = BuildLog()
        asker = Asker(ScriptedBackend([failure]), None, make_config(), log)
        with pytest.raises(type(failure)):
            asker.ask(_question())
        assert log.dropped == [] and log.llm_calls == 1
