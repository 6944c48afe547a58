"""The `reasonrec` CLI contract, through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrec.config import ConfigError, load_config

REASONREC = [sys.executable, "-m", "reasonrec.cli"]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*REASONREC, *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"reasonrec {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture()
def cli_args(ml100k_dir: Path, tmp_path: Path) -> list[str]:
    return ["--data", str(ml100k_dir), "--data-dir", str(tmp_path)]


def test_data_json_describes_ml100k(cli_args: list[str], ml100k_dir: Path) -> None:
    payload = json.loads(run_cli(*cli_args, "data", "--json").stdout)
    assert payload["dataset"] == "ml-100k"
    assert (payload["users"], payload["items"], payload["interactions"]) == (943, 1682, 100000)
    assert payload["source"] == str(ml100k_dir)
    assert payload["sessions"] > payload["users"]


def test_session_gap_flag_changes_session_count(cli_args: list[str]) -> None:
    short = json.loads(run_cli(*cli_args, "data", "--json", "--session-gap", "5").stdout)
    long = json.loads(run_cli(*cli_args, "data", "--json", "--session-gap", "600").stdout)
    assert short["sessions"] > long["sessions"] >= long["users"]


def test_pop_train_evaluate_recommend(cli_args: list[str], tmp_path: Path) -> None:
    run_dir = Path(run_cli(*cli_args, "train", "--model", "pop", "--quiet").stdout.strip())
    assert run_dir.is_dir() and run_dir.parent.parent.parent == tmp_path / "runs"
    assert {p.name for p in run_dir.iterdir()} >= {"model", "config.json", "metrics.json"}

    metrics = json.loads(run_cli(*cli_args, "evaluate", "--model", "pop", "--json").stdout)
    expected = ["model", "protocol", "split", "n_users"] + [
        f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)]
    assert list(metrics)[: len(expected)] == expected
    assert metrics["protocol"] == "loo" and metrics["n_users"] == 943
    assert 0.0 < metrics["NDCG@10"] < metrics["HR@10"] <= metrics["HR@20"] <= 1.0

    rec = json.loads(run_cli(*cli_args, "recommend", "--user", "196", "--k", "5",
                             "--model", "pop", "--json").stdout)
    assert [r["rank"] for r in rec["top_k"]] == [1, 2, 3, 4, 5]
    assert set(rec["top_k"][0]) >= {"item_id", "title", "score", "rank"}
    seen = {h["item_id"] for h in rec["history"]}
    assert not seen & {r["item_id"] for r in rec["top_k"]}, "seen items are excluded by default"
    scores = [r["score"] for r in rec["top_k"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("args, needle", [
    (["recommend", "--user", "no-such-user", "--model", "pop"], "unknown user 'no-such-user'"),
    (["train", "--model", "bert4rec"], "unknown model 'bert4rec'"),
    (["--data", "/definitely/not/here", "data"], "/definitely/not/here"),
    (["bench", "reference", "--models", "sasrec", "--device", "gpu"],
     "--device must be cpu, cuda or auto, got 'gpu'"),
])
def test_errors_are_one_clear_line(cli_args: list[str], args: list[str], needle: str) -> None:
    # Global flags given later override the fixture's --data.
    if args[0] == "--data":
        cli = args
    else:
        cli = [*cli_args, *args]
    result = run_cli(*cli, check=False)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_config_file_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = -3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: field 'train\.epochs'"):
        load_config(bad)
    bad.write_text("[recommend]\ndefault_model = 'gpt'\n")
    with pytest.raises(ConfigError, match=r"field 'recommend\.default_model'"):
        load_config(bad)
    bad.write_text("[nonsense\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_config_layers_defaults_file_then_flags(tmp_path: Path) -> None:
    assert load_config().train.patience == 5
    layer = tmp_path / "c.toml"
    layer.write_text("[train]\npatience = 9\nseed = 7\n")
    cfg = load_config(layer, {"train": {"seed": 11, "epochs": None}})
    assert (cfg.train.patience, cfg.train.seed) == (9, 11)
    assert cfg.train.epochs == 200  # None flags do not override
