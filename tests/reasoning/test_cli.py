"""The reasoning commands, run as a user runs them (subprocesses, real model).

Graphs here use a lexical-only localizer and short windows so each command
takes seconds; the real encoder is covered by test_localizer and test_builder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasoning.graph import graph_from_json
from reasoning.store import GraphStore

REPO = Path(__file__).parents[2]


@pytest.fixture
def cli(tmp_path: Path, ml100k_dir: Path):
    """``cli(*args)`` runs ``reasonrec --config C --data-dir D *args`` and returns the result."""
    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = {json.dumps(str(ml100k_dir))}\n\n'
                      '[reasoning]\nlexical_weight = 1.0\nl_tru = 3\nmasks_per_chain = 1\n')
    data_dir = tmp_path / "data"

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(_command(config, data_dir, *args), capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)

    run.config, run.data_dir = config, data_dir
    return run


def _command(config: Path, data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reasonrec.cli", "--config", str(config), "--data-dir",
            str(data_dir), *args]


@pytest.mark.llm
@pytest.mark.slow
def test_build_graphs_survives_sigkill_and_resumes(cli) -> None:
    graphs = cli.data_dir / "reasoning" / "graphs"
    process = subprocess.Popen(_command(cli.config, cli.data_dir, "build-graphs", "--users", "4",
                                        "--quiet"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.monotonic() + 240
        while not list(graphs.glob("*.json.gz")):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no graph written in 240 s"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)   # mid-run: the next graph is being built
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        process.stderr.close()
    store = GraphStore(graphs)
    first = {user: (graphs / f"{user}.json.gz").read_bytes() for user in store.users()}
    assert 1 <= len(first) < 4
    for user in first:   # what was written is whole
        assert store.load(user).graph["user"] == user

    rerun = cli("build-graphs", "--users", "4", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(first)} of 4 users already have a graph" in rerun.stderr
    assert store.users() == sorted(["196", "186", "22", "244"])
    for user, data in first.items():   # finished graphs were not rebuilt
        assert (graphs / f"{user}.json.gz").read_bytes() == data
    assert not [p for p in graphs.iterdir() if p.name.endswith(".tmp")]

    again = cli("build-graphs", "--users", "4", "--quiet")
    assert again.returncode == 0 and "4 of 4 users already have a graph" in again.stderr

    stats = cli("kb", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    kinds = json.loads(stats.stdout)["kinds"]
    assert kinds["intent"]["entries"] > 0 and kinds["reason"]["entries"] > 0
    cleared = cli("kb", "clear")
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert json.loads(cli("kb", "stats", "--json").stdout)["entries"] == 0


@pytest.mark.llm
@pytest.mark.slow
def test_reason_prints_the_graph_and_its_log(cli) -> None:
    result = cli("reason", "--user", "1", "--json")
    assert result.returncode == 0, result.stderr
    graph = graph_from_json(json.loads(result.stdout))
    log = graph.graph["build_log"]
    assert graph.graph["user"] == "1" and len(graph.graph["window"]) == 3
    assert log.llm_calls > 0 and set(log.stages) >= {"chain", "verify"}
    human = cli("reason", "--user", "1")   # the same window again: answered from the KB
    assert human.returncode == 0, human.stderr
    assert "3-item window" in human.stdout and "0 LLM calls" in human.stdout


@pytest.mark.slow   # each starts the CLI (about 5 s of imports)
@pytest.mark.parametrize("args, expected", [
    (("reason", "--user", "1", "--model", "/no/such/model.gguf"),
     "model file /no/such/model.gguf not found; install the default model"),
    (("reason", "--user", "no-such-user"), "unknown user 'no-such-user'"),
    (("build-graphs", "--users", "some"), "unknown user(s): some"),
    (("build-graphs", "--users", "@/no/such/list.txt"), "cannot read /no/such/list.txt"),
])
def test_errors_are_one_line(cli, args: tuple[str, ...], expected: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


@pytest.mark.llm
@pytest.mark.slow
def test_bench_reasoning_writes_its_report(cli, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli("bench", "reasoning", "--users", "2", "--window", "2", "--out", str(out), "--quiet",
                 "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(result.stdout)
    assert report["users"] == 2 and report["window"] == 2
    for name in ("no_reuse", "reuse", "warm_repeat"):
        row = report[name]
        assert row["sessions"] == 2 and row["wall_seconds"]["p95"] >= row["wall_seconds"]["median"] > 0
    assert report["warm_repeat"]["llm_calls"] == 0 and report["warm_repeat_identical"]
    assert report["no_reuse"]["llm_calls"] >= report["reuse"]["llm_calls"]
    assert set(report["bars"]) == {"cold_session_seconds", "outside_llm_share",
                                   "warm_session_seconds", "kb_call_saving"}
    assert all(isinstance(bar["met"], bool) for bar in report["bars"].values())


def test_users_can_be_a_count_a_list_or_a_file(tmp_path: Path) -> None:
    from reasonrec.cli_reasoning import ReasoningUserError, _choose_users

    ids = ["196", "186", "22", "244"]
    assert _choose_users(ids, "2") == ["196", "186"]
    assert _choose_users(ids, "all") == ids
    assert _choose_users(ids, "22, 196,22") == ["22", "196"]
    listing = tmp_path / "users.txt"
    listing.write_text("244\n\n186\n")
    assert _choose_users(ids, f"@{listing}") == ["244", "186"]
    with pytest.raises(ReasoningUserError, match="at least 1"):
        _choose_users(ids, "0")
    with pytest.raises(ReasoningUserError, match="unknown user"):
        _choose_users(ids, "196,999")
