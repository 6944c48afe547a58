"""Unit tests of the server pool and of the HTTP backend's failure handling (fake transport).

The real-server tests (killing llama_cpp.server processes) are in test_pool_servers.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from reasoning.backend import (BackendFailure, BackendUnavailable, LLMError, LLMRequest, LLMTimeout,
                               ScoringNotSupported)
from reasoning.graph import BuildLog
from reasoning.http_backend import HttpBackend, continuation_logprob
from reasoning.prompts import load_prompt
from reasoning.schemas import IntentAnswer, intent_schema
from reasoning.server_pool import ServerDown, ServerPool, ServerTimeout
from reasoning.structured import Asker, Question
from tests.reasoning.conftest import MakeConfig

A, B, C = "http://a/v1", "http://b/v1", "http://c/v1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requests_go_to_the_least_busy_server() -> None:
    pool = ServerPool([A, B, C], probe=lambda url: None, total_limit=3)
    held = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def slow(url: str) -> str:
        with lock:
            started.append(url)
        held.wait(5)
        return url

    threads = [threading.Thread(target=pool.run, args=(slow,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    while len(started) < 3:
        threading.Event().wait(0.01)
    # Three at once on three servers: each gets one, none gets two.
    assert sorted(started) == [A, B, C]
    assert [s.in_flight for s in pool.stats()] == [1, 1, 1]
    held.set()
    for thread in threads:
        thread.join()
    # Idle pool: ties go to the server that served fewest, then the first listed.
    assert pool.run(lambda url: url) == A
    assert pool.run(lambda url: url) == B


def test_per_server_limit_and_total_limit() -> None:
    pool = ServerPool([A, B], probe=lambda url: None, total_limit=4, per_server_limit=1)
    gate = threading.Event()
    seen: list[str] = []

    def hold(url: str) -> None:
        seen.append(url)
        gate.wait(5)

    first = [threading.Thread(target=pool.run, args=(hold,)) for _ in range(2)]
    for thread in first:
        thread.start()
    while len(seen) < 2:
        threading.Event().wait(0.01)
    third = threading.Thread(target=pool.run, args=(hold,))
    third.start()
    third.join(0.3)
    assert third.is_alive() and len(seen) == 2   # both servers at their limit: it waits
    gate.set()
    for thread in [*first, third]:
        thread.join(5)
    assert sorted(seen[:2]) == [A, B] and len(seen) == 3


def test_a_failed_server_is_marked_down_and_the_request_moves_on() -> None:
    clock = FakeClock()
    probes: list[str] = []
    pool = ServerPool([A, B], probe=probes.append, backoff_s=1.0, clock=clock)

    def call(url: str) -> str:
        if url == A:
            raise ServerDown("connection refused")
        return url

    assert pool.run(call) == B
    a, b = pool.stats()
    assert not a.healthy and a.failures == 1 and "refused" in a.last_error
    assert b.healthy and b.requests == 1
    assert pool.run(call) == B and probes == []   # not re-probed before its backoff
    clock.now = 1.5
    assert pool.run(lambda url: url) == A         # probe due: it answered, A is back (least used)
    assert probes == [A] and pool.stats()[0].healthy


def test_re_probes_back_off_exponentially_up_to_the_cap() -> None:
    clock = FakeClock()
    probes: list[float] = []
    up = {"A": False}

    def probe(url: str) -> None:
        probes.append(clock.now)
        if not up["A"]:
            raise ConnectionError("still refused")

    pool = ServerPool([A, B], probe=probe, backoff_s=1.0, backoff_max_s=5.0, clock=clock)
    pool.run(lambda url: (_ for _ in ()).throw(ServerDown("reset")) if url == A else url)
    for step in range(40):   # 20 s of requests every half second
        clock.now = step * 0.5
        pool.run(lambda url: url)
    # After the mark-down at 0: probes at 1, then +2, +4, then capped at +5.
    assert probes[:5] == [1.0, 3.0, 7.0, 12.0, 17.0]
    up["A"] = True
    clock.now = 22.0
    pool.run(lambda url: url)
    assert pool.stats()[0].healthy


def test_no_server_ever_reached_fails_at_once() -> None:
    pool = ServerPool([A, B], probe=lambda url: None, outage_s=600)
    with pytest.raises(BackendUnavailable, match="no LLM server answered.*http://a/v1.*http://b/v1"):
        pool.run(lambda url: (_ for _ in ()).throw(ServerDown(f"{url}: refused")))


def test_an_outage_waits_with_probes_then_gives_up() -> None:
    probes: list[float] = []

    def probe(url: str) -> None:
        probes.append(time.monotonic())
        raise ConnectionError("refused")

    # Real time, small numbers: the pool's waits are real waits.
    pool = ServerPool([A], probe=probe, outage_s=0.6, backoff_s=0.05, backoff_max_s=0.2)
    assert pool.run(lambda url: url) == A        # reached once: later outages are waited out
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"refused \(no answer for \d s\)"):
        pool.run(lambda url: (_ for _ in ()).throw(ServerDown(f"{url}: reset")))
    assert time.monotonic() - started >= 0.6
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert len(probes) >= 3 and gaps[0] < gaps[-1] <= 0.2 + 0.1   # backing off, capped


def test_a_request_that_breaks_every_server_is_not_retried_forever() -> None:
    pool = ServerPool([A, B], probe=lambda url: None, backoff_s=0.0001, max_failovers=4)
    pool.run(lambda url: url)   # both answer probes, but this request times out on each
    with pytest.raises(LLMTimeout, match="failed on 4 tries"):
        pool.run(lambda url: (_ for _ in ()).throw(ServerTimeout(f"{url}: no answer in 60 s")))


# ------------------------------------------------------------------ HTTP backend, fake transport
MODEL = "/models/SmolLM2.gguf"


def chat_reply(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3}}


class FakeServers:
    """An httpx transport answering for several hosts; ``down`` hosts refuse, ``status`` overrides."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.status: dict[str, int] = {}
        self.hits: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.hits.append((host, request.url.path))
        if host in self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if host in self.status:
            return httpx.Response(self.status[host], text="boom")
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": MODEL}]})
        self.bodies.append(json.loads(request.content))
        return httpx.Response(200, json=chat_reply('{"intent": "romance"}'))


def backend(make_config: MakeConfig, servers: FakeServers, **overrides: Any) -> HttpBackend:
    config = make_config(backend="http", http_urls=[A, B], http_backoff_s=60.0, **overrides)
    return HttpBackend(config, transport=httpx.MockTransport(servers))


def request() -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=intent_schema(["romance"]))


def test_failover_from_a_refusing_server_and_a_5xx(make_config: MakeConfig) -> None:
    servers = FakeServers()
    llm = backend(make_config, servers)
    assert llm.model_identity == f"http:{MODEL}"   # asked A, so B is now the least used
    servers.down.add("b")
    assert json.loads(llm.complete(request()).text) == {"intent": "romance"}
    servers.down.clear()
    servers.status["b"] = 503
    llm.pool._servers[1].healthy = True   # B back, as its probe would find
    assert llm.complete(request()).text
    a, b = llm.server_stats()
    assert (a.requests, a.failures) == (3, 0)
    assert (b.requests, b.failures, b.healthy) == (0, 2, False) and "503" in b.last_error


def test_all_servers_down_raises_backend_unavailable(make_config: MakeConfig) -> None:
    servers = FakeServers()
    llm = backend(make_config, servers, http_model="m")
    servers.down |= {"a", "b"}
    with pytest.raises(BackendUnavailable, match="Connection refused"):
        llm.complete(request())


@pytest.mark.parametrize("status, error", [(401, BackendFailure), (404, BackendFailure),
                                           (400, LLMError)])
def test_client_errors(make_config: MakeConfig, status: int, error: type) -> None:
    servers = FakeServers()
    servers.status.update(a=status, b=status)
    llm = backend(make_config, servers, http_model="m")
    with pytest.raises(error) as raised:
        llm.complete(request())
    # A refused key or a wrong URL fails the build; a refused request drops only its piece.
    assert isinstance(raised.value, BackendFailure) == (status != 400)
    assert all(s.failures == 0 for s in llm.server_stats())   # not a reason to mark a server down


def test_a_server_with_another_model_stays_down(make_config: MakeConfig) -> None:
    servers = FakeServers()
    llm = backend(make_config, servers)
    llm.model_identity   # noqa: B018  (discovers the model from A)
    with pytest.raises(ServerDown, match="serves /models/SmolLM2.gguf, not another"):
        llm._model_name = "another"
        llm._probe(B)


@pytest.mark.parametrize("style, check", [
    ("json_object", lambda b: b["response_format"]["type"] == "json_object"
     and "schema" in b["response_format"]),
    ("json_schema", lambda b: b["response_format"]["type"] == "json_schema"
     and b["response_format"]["json_schema"]["strict"] is True
     and "schema" in b["response_format"]["json_schema"]),
    ("guided_json", lambda b: "response_format" not in b and b["guided_json"]["type"] == "object"),
])
def test_request_body_per_schema_style(make_config: MakeConfig, style: str, check: Any) -> None:
    servers = FakeServers()
    llm = backend(make_config, servers, http_schema_style=style)
    llm.complete(request())
    (body,) = servers.bodies
    assert body["model"] == MODEL and check(body), body


def test_a_5xx_is_never_a_dropped_piece(make_config: MakeConfig) -> None:
    servers = FakeServers()
    servers.status.update(a=500, b=502)
    llm = backend(make_config, servers, http_model="m")
    log = BuildLog()
    prompt = load_prompt("intent")
    question = Question(stage="chain", kind="intent", prompt=prompt,
                        messages=[{"role": "user", "content": "x"}], schema=intent_schema(["romance"]),
                        answer_model=IntentAnswer, context={"options": ["romance"]},
                        key_fields={"x": 1}, piece="intent of item 1")
    with pytest.raises(BackendUnavailable, match="HTTP 50"):
        Asker(llm, None, make_config(), log).ask(question)
    with pytest.raises(BackendUnavailable):
        Asker(llm, None, make_config(), log).score("verify", "mask", "prefix", [" a", " b"])
    assert log.dropped == [] and log.llm_calls == 2


# ------------------------------------------------------------------ echo parsing
def echo(prompt: str, tokens: list[str], values: list[float | None], generated: str) -> dict:
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    return {"choices": [{"text": prompt + generated,
                         "logprobs": {"tokens": tokens, "token_logprobs": values,
                                      "text_offset": offsets}}]}


def test_continuation_logprob_sums_the_continuation_tokens() -> None:
    prompt = "Intent: a good laugh"
    reply = echo(prompt, ["Int", "ent", ":", " a", " good", " laugh", "\n"],
                 [None, -1.0, -0.5, -0.1, -0.2, -0.3, -0.9], "\n")
    total, count = continuation_logprob(reply, prompt, " a good laugh")
    assert count == 3 and total == pytest.approx(-0.6)


def test_continuation_logprob_refuses_shifted_pairs_and_missing_values() -> None:
    prompt = "Intent: fun"
    # llama-cpp-python without a BOS: the last echoed entry is a prompt token, not the generated one.
    shifted = echo(prompt, ["Int", "ent", ":", " fun"], [None, -1.0, -0.5, -0.1], "\n")
    with pytest.raises(ScoringNotSupported, match="http_score_prefix"):
        continuation_logprob(shifted, prompt, " fun")
    with pytest.raises(ScoringNotSupported, match="no prompt log-probabilities"):
        continuation_logprob({"choices": [{"text": prompt, "logprobs": None}]}, prompt, " fun")
    # The model stopped at once (no generated token): the prompt's own end anchors the offsets.
    stopped = echo(prompt, ["Int", "ent", ":", " fun"], [None, -1.0, -0.5, -0.25], "")
    assert continuation_logprob(stopped, prompt, " fun") == (-0.25, 1)


def test_http_scoring_fails_over_too(make_config: MakeConfig) -> None:
    prompt_seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            raise httpx.ReadError("connection reset", request=request)
        body = json.loads(request.content)
        prompt_seen.append(body["prompt"])
        assert body["echo"] is True and body["max_tokens"] == 1 and body["logprobs"] == 1
        return httpx.Response(200, json={**echo(body["prompt"], [body["prompt"][:-4], body["prompt"][-4:],
                                                                  "\n"], [None, -0.7, -0.1], "\n"),
                                         "usage": {"prompt_tokens": 2}})

    config = make_config(backend="http", http_urls=[A, B], http_model="m",
                         http_score_prefix="<s>")
    llm = HttpBackend(config, transport=httpx.MockTransport(handler))
    scores = llm.score_continuations("Intent:", [" fun", " war"])
    assert scores.logprobs == [-0.7, -0.7] and scores.lengths == [1, 1] and scores.tokens_read == 4
    assert prompt_seen == ["<s>Intent: fun", "<s>Intent: war"]
    assert llm.server_stats()[0].failures == 1


def test_an_outage_of_timeouts_is_a_timeout_and_still_stops_a_batch() -> None:
    pool = ServerPool([A], probe=lambda url: None)
    with pytest.raises(LLMTimeout) as raised:
        pool.run(lambda url: (_ for _ in ()).throw(ServerTimeout(f"{url}: no answer in 1 s")))
    assert isinstance(raised.value, BackendUnavailable)
