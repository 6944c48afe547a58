"""Every command in the README's command-line block runs on an empty data dir.

The commands run in README order, as a newcomer would type them, each as a real
``reasonrec`` process on one fresh data directory (nothing shipped is
pre-fetched; ml-100k is fetched by the first command). Each must exit 0
without a traceback, and print parseable JSON where it is given ``--json``.

Commands that take hours run at a small size, by the rules in
:data:`SMALL_SIZE` (documented here, so the README stays what a user types):

* every command reads a config with ``[train] epochs = 1``, so base models train
  one epoch, and ``[fusion] latency_users = 10``, ``faithfulness_users = 10``, so ``bench
  fusion`` times and explains 10 users, not 100 (neither is part of a fused run's
  fingerprint: the shipped runs are still the ones used);
* ``bench models`` trains ``--models pop,sasrec`` only, and over the first two of the README's
  seeds (two seeds take the same mean-and-spread path as three);
* ``bench reference`` runs RecBole's SR-GNN only, one epoch (``--models srgnn
  --max-epochs 1``), and over the first two of the README's seeds;
* ``build-graphs --users all`` and ``bench reasoning --users 200`` take two users, and
  ``bench reasoning`` a three-item window (``--window 3``): its three passes cost four cold
  sessions, and ``reason`` above already builds one at the default window;
* ``bench explanations`` explains five users of the sample (``--users 5``);
* ``bench quality`` measures the default model only, on one cold session and two chains;
* ``report`` writes its file into the gitignored ``test-artifacts/``, not the repository root.

A README example without a passing run here is a failing test; a rule here that
no README command uses fails too, so the two stay in step.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REASONREC = [sys.executable, "-m", "reasonrec.cli"]

pytestmark = [pytest.mark.slow, pytest.mark.llm]


def readme_commands() -> list[str]:
    """The ``reasonrec ...`` lines of the README's "Command line" block, comments dropped."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no ```bash block under '## Command line'"
    commands = []
    for line in block.group(1).splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith("reasonrec "):
            commands.append(command)
    return commands


# README command prefix -> (argument rewrites, extra arguments); see the module docstring.
SMALL_SIZE: dict[str, tuple[dict[str, str], list[str]]] = {
    "reasonrec bench models": ({"2020,1,2": "2020,1"}, ["--models", "pop,sasrec"]),
    "reasonrec bench reference": ({"2020,1,2": "2020,1"}, ["--models", "srgnn", "--max-epochs", "1"]),
    "reasonrec build-graphs --users all": ({"all": "2"}, []),
    "reasonrec bench reasoning --users 200": ({"200": "2"}, ["--window", "3"]),
    "reasonrec bench explanations": ({}, ["--users", "5"]),
    "reasonrec bench quality": ({"smollm2-135m,gemma3-270m": "smollm2-135m"},
                                ["--users", "1", "--chains", "2"]),
    "reasonrec report": ({"report-196.html": "test-artifacts/readme-report-196.html"}, []),
}


def small_size(command: str) -> list[str]:
    """The README command as argv, shrunk by the first rule whose prefix it starts with."""
    args = shlex.split(command)[1:]
    for prefix, (rewrites, extra) in SMALL_SIZE.items():
        if command.startswith(prefix):
            return [rewrites.get(arg, arg) for arg in args] + extra
    return args


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An empty data dir and a one-epoch training config, as environment variables."""
    root = tmp_path_factory.mktemp("readme")
    config = root / "one-epoch.toml"
    config.write_text("[train]\nepochs = 1\nprogress = false\n\n"
                      "[fusion]\nlatency_users = 10\nfaithfulness_users = 10\n")
    data_dir = root / "data"
    data_dir.mkdir()
    return {**os.environ, "REASONREC_DATA_DIR": str(data_dir), "REASONREC_CONFIG": str(config),
            "PYTHONPATH": str(ROOT)}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REASONREC, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1500)


def test_every_small_size_rule_matches_a_readme_command() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    for prefix in SMALL_SIZE:
        assert any(c.startswith(prefix) for c in commands), f"stale rule: {prefix}"


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_on_an_empty_data_dir(command: str,
                                                  fresh_env: dict[str, str]) -> None:
    result = run(small_size(command), fresh_env)
    assert result.returncode == 0, f"{command}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if "--json" in command:
        json.loads(result.stdout)


def test_recommend_trains_a_missing_model_first(tmp_path: Path,
                                                fresh_env: dict[str, str]) -> None:
    """No run of the model yet: ``recommend`` trains one (it once crashed under no_grad)."""
    env = {**fresh_env, "REASONREC_DATA_DIR": str(tmp_path)}
    result = run(["recommend", "--user", "196", "--k", "3", "--model", "gru4rec", "--json"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(result.stdout)
    assert payload["model"] == "gru4rec" and len(payload["top_k"]) == 3


def test_explain_builds_a_missing_graph_live(fresh_env: dict[str, str]) -> None:
    """A user with no stored or shipped graph: ``explain`` builds it, stores it, explains."""
    from models.data import ensure_ml100k, load_dataset
    from models.fusion.samples import sample_users
    from models.protocol import leave_one_out
    from reasonrec.config import load_config

    config = load_config()
    data_dir = Path(fresh_env["REASONREC_DATA_DIR"])
    dataset = load_dataset(ensure_ml100k(data_dir))
    sampled = {dataset.user_ids[int(u)] for u in
               sample_users(leave_one_out(dataset, config.data.max_len), config.fusion.users,
                            config.fusion.seed)}
    stored = {p.name.split(".")[0] for p in (data_dir / "reasoning" / "graphs").glob("*.json.gz")}
    user = next(u for u in dataset.user_ids if u not in sampled and u not in stored)

    refused = run(["explain", "--user", user, "--graphs", "bundle", "--json"], fresh_env)
    assert refused.returncode == 2 and "no reasoning graph" in refused.stderr
    assert refused.stderr.count("\n") == 1, "an expected error is one line"

    result = run(["explain", "--user", user, "--k", "5", "--json"], fresh_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "building one" in result.stderr and "chain stage" in result.stderr
    assert (data_dir / "reasoning" / "graphs" / f"{user}.json.gz").is_file()
    payload = json.loads(result.stdout)
    assert payload["user"] == user and len(payload["top_k"]["fused"]) == 5
