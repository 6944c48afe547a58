"""The OpenAI-compatible HTTP backend against a real loopback ``python -m llama_cpp.server``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from models.data import Dataset
from reasoning.backend import BackendInfo, LLMError, LLMRequest, LLMTimeout
from reasoning.http_backend import HttpBackend
from reasoning.llama_backend import default_model_path
from reasoning.prompts import load_prompt
from reasoning.schemas import IntentAnswer, answer_prefix, intent_schema
from reasonrec.bench_app import free_port
from reasonrec.local_servers import ServerStartError, start_server
from tests.reasoning.conftest import MakeConfig
from tests.reasoning.test_builder import _check_graph

pytestmark = [pytest.mark.llm, pytest.mark.slow]
OPTIONS = ["a good laugh", "family fun", "romance"]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama.cpp server on 127.0.0.1 serving the packaged model (stopped after the module)."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        # Its load log goes to a file: a pipe nobody reads fills up and blocks the server.
        server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model",
                                   str(default_model_path()), "--host", "127.0.0.1", "--port",
                                   str(port), "--n_threads", "1", "--n_ctx", "2048"],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start in 120 s")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _request() -> LLMRequest:
    prompt = load_prompt("intent")
    schema = intent_schema(OPTIONS)
    return LLMRequest(messages=prompt.messages(item="Liar Liar (1997) [Comedy]", options=", ".join(OPTIONS)),
                      schema=schema, max_tokens=prompt.max_tokens, prefill=answer_prefix(schema))


def test_structured_answer_and_streaming(server_url: str, make_config: MakeConfig) -> None:
    backend = HttpBackend(make_config(backend="http", http_url=server_url))
    info = backend.info()
    assert info.model.endswith(".gguf") and info.http is not None and info.http.url == server_url
    assert BackendInfo.from_dict(info.to_dict()) == info   # as build logs store it
    assert backend.model_identity.startswith("http:")
    response = backend.complete(_request())
    IntentAnswer.model_validate(json.loads(response.text), context={"options": OPTIONS})
    assert response.finish_reason == "stop" and response.tokens_in > 0 and response.tokens_out > 0
    pieces: list[str] = []
    streamed = backend.complete(_request(), on_token=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == streamed.text == response.text
    backend.close()


def test_concurrent_requests(server_url: str, make_config: MakeConfig) -> None:
    backend = HttpBackend(make_config(backend="http", http_url=server_url, concurrency=3))
    with ThreadPoolExecutor(max_workers=3) as pool:
        texts = list(pool.map(lambda _: backend.complete(_request()).text, range(6)))
    assert len(set(texts)) == 1   # greedy: the same answer every time
    backend.close()


def test_timeout_and_refused_connection(server_url: str, make_config: MakeConfig) -> None:
    slow = HttpBackend(make_config(backend="http", http_url=server_url, http_model="m",
                                   http_timeout_s=0.001))
    with pytest.raises(LLMTimeout, match="no answer in"):
        slow.complete(_request())
    closed = f"http://127.0.0.1:{free_port()}/v1"
    refused = HttpBackend(make_config(backend="http", http_url=closed, http_model="m"))
    with pytest.raises(LLMError, match=closed):
        refused.complete(_request())


def test_build_graphs_over_http_with_concurrent_users(server_url: str, ml100k_dir: Path,
                                                      ml100k: Dataset, tmp_path: Path) -> None:
    """Two users' graphs, built at once over two servers, hold every graph invariant.

    Short window and one mask: the server decodes under a stock grammar sampler and
    computes echoed log-probabilities in Python (seconds per scored option on CPU).
    http_score_prefix: SmolLM2 adds no BOS token, and llama-cpp-python's echo needs one."""
    from typer.testing import CliRunner

    from reasonrec.cli import app
    from reasoning.store import GraphStore

    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = {json.dumps(str(ml100k_dir))}\n\n[reasoning]\n'
                      'lexical_weight = 1.0\nl_tru = 1\nmasks_per_chain = 1\nn_distractors = 1\n'
                      'http_score_prefix = "<|im_start|>"\n')
    # A second server, so the two users' sessions really run at once: llama_cpp.server answers
    # one request at a time, and on one server they would only take turns (half the wall time on
    # two cores). Concurrent requests on one server are test_concurrent_requests' job.
    try:
        second = start_server(default_model_path(), tmp_path / "logs")
    except ServerStartError as exc:
        pytest.fail(str(exc))
    try:
        result = CliRunner().invoke(app, ["--config", str(config), "--data-dir", str(tmp_path / "d"),
                                          "build-graphs", "--users", "2", "--backend", "http",
                                          "--url", server_url, "--url", second.url,
                                          "--concurrency", "2", "--quiet"])
    finally:
        second.kill()
    assert result.exit_code == 0, result.output
    assert '"POST /v1/completions HTTP/1.1" 200' in second.log.read_text(errors="replace")
    store = GraphStore(tmp_path / "d" / "reasoning" / "graphs")
    assert store.users() == ["186", "196"]
    assert store.load("196").graph["build_log"].backend["concurrency"] == 2
    for user in ("186", "196"):
        graph = store.load(user)
        _check_graph(graph, ml100k, user)
        log = graph.graph["build_log"]
        assert log.backend["backend"] == "http" and log.backend["model_identity"].startswith("http:")
        # Scored over HTTP: no piece stands in for a score the server could not give.
        assert not [d for d in log.dropped if "scoring failed" in d.reason or "backend" in d.reason]
