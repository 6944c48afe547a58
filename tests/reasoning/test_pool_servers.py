"""A pool of real ``python -m llama_cpp.server`` processes on loopback, killed mid-batch.

Scoring through llama-cpp-python's server costs seconds per request on a CPU
(it sorts the vocabulary in Python for every echoed token), so the batch here
is small: window 1, one mask, one distractor, one next intent.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reasoning.backend import LLMBackend, LLMRequest
from reasoning.http_backend import HttpBackend
from reasoning.llama_backend import default_model_path
from reasoning.prompts import load_prompt
from reasonrec.local_servers import LocalServer, ServerStartError, start_server
from tests.reasoning.conftest import MakeConfig

pytestmark = [pytest.mark.llm, pytest.mark.slow]
BOS = "<|im_start|>"   # SmolLM2 adds no BOS token; llama-cpp-python's echo needs one (see http_backend)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def servers(tmp_path: Path):
    started: list[LocalServer] = []

    def start(port: int | None = None) -> LocalServer:
        try:
            started.append(start_server(default_model_path(), tmp_path, port))
        except ServerStartError as exc:
            pytest.fail(str(exc))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_http_scores_agree_with_in_process(servers, make_config: MakeConfig,
                                           llama_backend: LLMBackend) -> None:
    server = servers()
    prompt = load_prompt("intent")
    prefix = prompt.scored_text(item="Liar Liar (1997) [Comedy]",
                                options="a good laugh, family fun, romance")
    options = [" a good laugh", " family fun", " romance"]
    http = HttpBackend(make_config(backend="http", http_urls=[server.url], http_score_prefix=BOS))
    remote = http.score_continuations(prefix, options)
    local = llama_backend.score_continuations(prefix, options)
    assert remote.lengths == local.lengths
    # Same choice; values differ a little because the server reads one BOS token more
    # (measured: -2.03/-2.01, -0.56/-0.61, -4.02/-3.44).
    per_token = lambda s: [lp / n for lp, n in zip(s.logprobs, s.lengths)]  # noqa: E731
    assert max(range(3), key=per_token(remote).__getitem__) == \
        max(range(3), key=per_token(local).__getitem__)
    assert max(abs(a - b) for a, b in zip(remote.logprobs, local.logprobs)) < 1.0
    # Without the BOS text the server's echo pairs tokens with the wrong rows: refused, not used.
    plain = HttpBackend(make_config(backend="http", http_urls=[server.url]))
    with pytest.raises(Exception, match="http_score_prefix"):
        plain.score_continuations(prefix, options[2:])
    http.close()
    plain.close()


def test_requests_survive_a_killed_server(servers, make_config: MakeConfig) -> None:
    first, second = servers(), servers()
    http = HttpBackend(make_config(backend="http", http_urls=[first.url, second.url],
                                   concurrency=2, http_backoff_s=30.0))
    request = LLMRequest(messages=[{"role": "user", "content": "Name one movie genre."}],
                         max_tokens=8)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(http.complete, request) for _ in range(12)]
        _wait(lambda: first.answered() >= 1, 120, "the first server's first answer")
        first.kill()
        texts = [f.result(timeout=300).text for f in futures]   # none raises
    assert len(texts) == 12
    a, b = http.server_stats()
    assert a.failures >= 1 and not a.healthy and b.requests >= 12 - a.requests
    http.close()


def _build(config: Path, data_dir: Path, urls: list[str], users: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", "from reasonrec.cli import main; main()", "--config", str(config),
            "--data-dir", str(data_dir), "build-graphs", "--users", users, "--quiet", "--json"]
    for url in urls:
        args += ["--url", url]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _graph(data_dir: Path, user: str) -> dict | None:
    path = data_dir / "reasoning" / "graphs" / f"{user}.json.gz"
    return json.loads(gzip.decompress(path.read_bytes())) if path.exists() else None


def test_batch_fails_over_stops_when_all_are_down_and_resumes(servers, tmp_path: Path,
                                                             ml100k_dir: Path) -> None:
    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = {json.dumps(str(ml100k_dir))}\n\n[reasoning]\n'
                      'lexical_weight = 1.0\nl_tru = 1\nmasks_per_chain = 1\nn_distractors = 1\n'
                      f'k_intents = 1\nr_items = 1\nhttp_score_prefix = "{BOS}"\n'
                      'http_outage_s = 3\nhttp_backoff_s = 0.5\n')
    data_dir = tmp_path / "d"
    first, second = servers(), servers()
    build = _build(config, data_dir, [first.url, second.url], "196,186")
    # One server dies mid-session: the batch goes on on the other.
    _wait(lambda: first.answered() + second.answered() >= 3, 180, "three answers")
    first.kill()
    _wait(lambda: _graph(data_dir, "196") is not None or build.poll() is not None, 240,
          "the first graph")
    assert build.poll() is None, build.communicate()
    # Then the last one dies: the batch stops with exit 3 and keeps only the finished graph.
    second.kill()
    out, err = build.communicate(timeout=120)
    assert build.returncode == 3, err
    summary = json.loads(out)
    assert summary["outcome"] == "stopped" and summary["built"] == 1 and summary["failed"] == 1
    assert "1 of 2 graphs are finished" in err and "run the same command again" in err
    graph = _graph(data_dir, "196")
    assert graph is not None and _graph(data_dir, "186") is None
    assert graph["build_log"]["backend"]["model_identity"].startswith("http:")
    assert not [d for d in graph["build_log"]["dropped"] if "backend" in d["reason"]
                or "scoring failed" in d["reason"]]
    # A server comes back on the same port: the rerun skips 196 and builds 186.
    servers(second.port)
    rerun = _build(config, data_dir, [first.url, second.url], "196,186")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    summary = json.loads(out)
    assert (summary["skipped"], summary["built"], summary["failed"]) == (1, 1, 0)
    assert summary["wall_seconds"] > 1 and summary["sessions_per_minute"] > 0
    later = _graph(data_dir, "186")
    assert later is not None and not [d for d in later["build_log"]["dropped"]
                                      if "backend" in d["reason"] or "scoring failed" in d["reason"]]
