"""Failure paths of one structured question (scripted backend: the only fake-LLM tests).

Malformed JSON, truncated output, a timeout, an invalid enum value: each is
retried once, then the piece is dropped with every reason on the build log.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from models.data import Catalogue
from reasoning.backend import LLMError
from reasoning.builder import EmptySessionError, GraphBuilder, SessionWindow
from reasoning.chain import item_intent
from reasoning.graph import BuildLog
from reasoning.kb import KnowledgeBase
from reasoning.prompts import load_intents, load_prompt
from reasoning.schemas import IntentAnswer, intent_schema
from reasoning.structured import RETRY_TEMPERATURE, Asker, Question
from tests.reasoning.conftest import MakeConfig
from tests.reasoning.fakes import ScriptedBackend, reply

OPTIONS = ["a good laugh", "family fun", "romance"]


def _question() -> Question:
    # The intent question as a generated JSON enum (the chain stage now scores it
    # instead): the simplest structured question to break in every way.
    prompt = replace(load_prompt("intent"), max_tokens=16)
    return Question(stage="chain", kind="intent", prompt=prompt,
                    messages=prompt.messages(item="Liar Liar (1997) [Comedy]", options=", ".join(OPTIONS)),
                    schema=intent_schema(OPTIONS), answer_model=IntentAnswer,
                    context={"options": OPTIONS}, key_fields={"item": "Liar Liar (1997) [Comedy]"},
                    piece="intent of item 294", fallback="first option")


def _ask(make_config: MakeConfig, script: list, kb: KnowledgeBase | None = None
         ) -> tuple[dict | None, BuildLog, ScriptedBackend]:
    backend = ScriptedBackend(script)
    log = BuildLog()
    answer = Asker(backend, kb, make_config(), log).ask(_question())
    return answer, log, backend


@pytest.mark.parametrize("bad, reason", [
    (reply('{"intent": "a good'), "malformed JSON"),
    (reply('{"intent": "a good laugh", "reason": "x"}'), "invalid answer"),
    (reply('{"intent": "space opera"}'), "invalid answer: intent"),
    (reply('{"intent": "a good laugh"', finish_reason="length"), "truncated at 16 tokens"),
    (LLMError("HTTP 400: bad request"), "backend error: HTTP 400"),
])
def test_a_failure_is_retried_once_then_succeeds(make_config: MakeConfig, bad, reason: str) -> None:
    answer, log, backend = _ask(make_config, [bad, reply('{"intent": "romance"}')])
    assert answer == {"intent": "romance"}
    assert log.llm_calls == 2 and log.retries == 1 and not log.dropped
    # The retry differs from the failed greedy answer: warmer, and more tokens after a cut.
    assert backend.requests[1].temperature == RETRY_TEMPERATURE
    if "truncated" in reason:
        assert backend.requests[1].max_tokens > backend.requests[0].max_tokens


@pytest.mark.parametrize("bad, reason", [
    (reply("not json at all"), "malformed JSON"),
    (reply('{"intent": "space opera"}'), "is not one of the options"),
    (reply('{"intent": "a', finish_reason="length"), "truncated at 16 tokens"),
    (LLMError("HTTP 400: bad request"), "backend error: HTTP 400"),
])
def test_a_piece_that_fails_twice_is_dropped_with_its_reasons(make_config: MakeConfig, bad,
                                                             reason: str) -> None:
    answer, log, _ = _ask(make_config, [bad, bad])
    assert answer is None
    (dropped,) = log.dropped
    assert dropped.piece == "intent of item 294" and dropped.fallback == "first option"
    assert dropped.reason.startswith("attempt 1: ") and "attempt 2: " in dropped.reason
    assert reason in dropped.reason


def test_a_kb_hit_makes_no_llm_call(make_config: MakeConfig, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    first, _, _ = _ask(make_config, [reply('{"intent": "family fun"}')], kb)
    again, log, backend = _ask(make_config, [], kb)
    assert first == again == {"intent": "family fun"}
    assert backend.requests == [] and log.llm_calls == 0 and log.kb_hits == 1
    kb.close()


def test_a_failed_answer_is_not_stored(make_config: MakeConfig, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    _ask(make_config, [reply("{"), reply("{")], kb)
    assert kb.stats()["entries"] == 0
    kb.close()


def test_stage_falls_back_to_the_best_genre_fit(make_config: MakeConfig) -> None:
    catalogue = Catalogue.build([("294", "Liar Liar", 1997, ("Comedy",))])
    backend = ScriptedBackend([reply("{"), reply("{")])

    def refused(prefix: str, continuations: list[str]) -> None:
        raise LLMError("HTTP 400: the request was refused")   # a request's failure, not the backend's

    backend.score_continuations = refused  # type: ignore[method-assign]
    log = BuildLog()
    label = item_intent(Asker(backend, None, make_config(), log), catalogue[1], load_intents())
    assert label == "a good laugh"
    assert "best fit" in log.dropped[0].fallback


def test_an_empty_session_is_refused_before_any_call(make_config: MakeConfig) -> None:
    catalogue = Catalogue.build([("1", "Toy Story", 1995, ("Animation",))])
    backend = ScriptedBackend([])
    builder = GraphBuilder(backend, catalogue, make_config(), None, None)
    session = SessionWindow(dataset="toy", user="u1", items=(), target=None, target_position=0,
                            viewer="unknown")
    with pytest.raises(EmptySessionError, match="u1"):
        builder.build(session)
    assert backend.requests == []
