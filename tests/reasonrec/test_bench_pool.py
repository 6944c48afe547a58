"""``reasonrec bench pool`` (#21): its run settings and text (no server here; the real pool runs in
tests/reasoning/test_pool_servers.py and the bench itself in the README's figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning.config import load_reasoning_config
from reasonrec.bench_pool import SMALL_STAGES, SMOLLM2_SCORE_PREFIX, _config, pool_text
from reasonrec.local_servers import ServerStartError, start_server

URLS = ["http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1"]


def test_run_settings_are_small_cold_and_score_smollm2_with_its_prefix(tmp_path: Path) -> None:
    base = load_reasoning_config({"data_dir": str(tmp_path)})
    config = _config(base, Path("SmolLM2-135M-Instruct-Q8_0.gguf"), URLS, window=2)
    assert config.http_score_prefix == SMOLLM2_SCORE_PREFIX
    assert (config.backend, config.server_urls, config.concurrency) == ("http", URLS, 2)
    assert config.kb_enabled is False and config.l_tru == 2
    assert {k: getattr(config, k) for k in SMALL_STAGES} == SMALL_STAGES
    assert config.resolved_data_dir == tmp_path   # cached item vectors are reused
    # Another model gets no prefix unless the config names one; a configured one is kept.
    assert _config(base, Path("gemma-3-270m.gguf"), URLS, 1).http_score_prefix == ""
    named = load_reasoning_config({"http_score_prefix": "<bos>"})
    assert _config(named, Path("SmolLM2.gguf"), URLS, 1).http_score_prefix == "<bos>"


def test_text_names_the_bottleneck_and_what_is_measured() -> None:
    run = {"servers": 1, "built": 2, "failed": 0, "wall_seconds": 120.0, "sessions_per_minute": 1.0,
           "tokens_per_session": 900.0, "tokens_per_second": 15.0}
    result = {"model": "m.gguf", "users": 2, "window": 1, "speedup": 1.02,
              "runs": [run, {**run, "servers": 2, "sessions_per_minute": 1.02}],
              "bottleneck": "HTTP scoring is the bottleneck: ...",
              "gpu_pool_arithmetic": {"formula": "hours = ...", "tokens_per_session": 900.0,
                                      "server_tokens_per_second": 15.0}}
    text = pool_text(result)
    assert "1 server(s): 2 built, 0 failed in 120.0 s = 1.0 sessions/min" in text
    assert "2 server(s)" in text and "speed-up: 1.02" in text
    assert "HTTP scoring is the bottleneck" in text and "(measured)" in text


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(ServerStartError, match="exited"):
        start_server(missing, tmp_path / "logs", startup_s=60)


@pytest.mark.llm
@pytest.mark.slow
def test_bench_pool_runs_the_same_work_on_one_server_and_on_two(ml100k, tmp_path: Path) -> None:
    from reasonrec.bench_pool import bench_pool

    base = load_reasoning_config({})   # the shared data dir: its cached item vectors
    result = bench_pool(ml100k, base, servers=2, users=1, window=1, log=lambda line: None)
    one, two = result["runs"]
    assert (one["servers"], two["servers"]) == (1, 2)
    assert one["built"] == two["built"] == 1 and one["failed"] == two["failed"] == 0
    # Both runs did the same cold work (no answers kept in memory from the first).
    assert one["llm_calls"] == two["llm_calls"] and one["tokens"] > 0 and two["tokens"] > 0
    assert one["sessions_per_minute"] > 0 and result["speedup"] > 0
    assert result["http_score_prefix"] == SMOLLM2_SCORE_PREFIX
    assert result["gpu_pool_arithmetic"]["server_tokens_per_second"] == one["tokens_per_second"]
