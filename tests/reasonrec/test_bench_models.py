"""``reasonrec.bench_models``: each model measured in its own process, with a saved run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonrec.bench_models import bench_models, child_config_json, summarize_seeds
from models.runs import latest_run
from reasonrec.config import StudioConfig, load_config


def test_bench_pop_in_a_child_process(ml100k_dir: Path, tmp_path: Path):
    config = load_config(overrides={"data": {"path": str(ml100k_dir), "data_dir": str(tmp_path)}})
    result = bench_models(config, ["pop"])
    json.dumps(result)  # the CLI writes it as JSON
    assert result["dataset"] == "ml-100k" and result["protocol"] == "loo"
    assert result["machine"]["cpu_count"] >= 1 and result["machine"]["torch_threads"] >= 1
    (row,) = result["models"]
    assert row["model"] == "pop" and row["epochs"] == row["best_epoch"] == 1
    assert 0 < row["seconds_to_best"] <= row["total_seconds"] + 1e-9
    # The child loads torch and the data: tens of MB at least, far from the parent's own.
    assert 20 < row["peak_rss_mb"] < 4096
    assert set(row["test"]) == {f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    assert 0 < row["test"]["NDCG@10"] < row["test"]["HR@10"] < 1
    assert Path(row["run_dir"]) == latest_run(config.runs_dir, "ml-100k", "pop")


def test_bench_trains_once_per_seed_and_summarizes(ml100k_dir: Path, tmp_path: Path):
    config = load_config(overrides={"data": {"path": str(ml100k_dir), "data_dir": str(tmp_path)}})
    result = bench_models(config, ["pop"], seeds=[7, 11])
    assert result["seeds"] == [7, 11]
    assert [(r["model"], r["seed"]) for r in result["models"]] == [("pop", 7), ("pop", 11)]
    for row in result["models"]:  # each child really trained with its seed
        saved = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        assert saved["train"]["seed"] == row["seed"]
    (summary,) = result["summary"]
    assert summary["model"] == "pop" and summary["seeds"] == [7, 11]
    # Popularity does not depend on the seed: the same metrics, no spread.
    assert summary["test_mean"]["NDCG@10"] == pytest.approx(result["models"][0]["test"]["NDCG@10"])
    assert summary["test_std"]["NDCG@10"] == pytest.approx(0.0, abs=1e-12)


def test_summarize_seeds_by_hand():
    def row(seed: int, ndcg: float, seconds: float) -> dict:
        return {"model": "gru4rec", "seed": seed, "seconds_per_epoch": seconds,
                "total_seconds": 10 * seconds, "seconds_to_best": 8 * seconds,
                "peak_rss_mb": 500.0, "test": {"NDCG@10": ndcg}}
    summary = summarize_seeds([row(1, 0.06, 4.0), row(2, 0.05, 5.0), row(3, 0.07, 6.0)])
    assert summary["seeds"] == [1, 2, 3] and summary["seconds_per_epoch"] == pytest.approx(5.0)
    assert summary["max_seconds_to_best"] == pytest.approx(48.0)
    assert summary["test_mean"]["NDCG@10"] == pytest.approx(0.06)
    assert summary["test_std"]["NDCG@10"] == pytest.approx(0.01)  # sample std of .05, .06, .07
    single = summarize_seeds([row(1, 0.06, 4.0)])
    assert single["test_std"]["NDCG@10"] == 0.0


def test_bench_rejects_unknown_model_before_training(tmp_path: Path):
    config = load_config(overrides={"data": {"data_dir": str(tmp_path)}})
    with pytest.raises(ValueError, match="unknown model 'bert4rec'"):
        bench_models(config, ["pop", "bert4rec"])
    assert not (tmp_path / "runs").exists()


def test_child_config_keeps_unset_train_fields_unset(tmp_path: Path) -> None:
    """A bench child trains each model with its own tuned batch size and learning rate."""
    config = load_config(None)
    child = StudioConfig.model_validate_json(child_config_json(config))
    assert child.train.progress is False
    assert "batch_size" not in child.train.model_fields_set
    assert "learning_rate" not in child.train.model_fields_set
    assert "patience" not in child.train.model_fields_set
    assert child.data_dir == config.data_dir and child.train.epochs == config.train.epochs
    toml = tmp_path / "studio.toml"
    toml.write_text("[train]\nbatch_size = 64\n[models.sasrec]\nhidden_size = 32\n")
    child = StudioConfig.model_validate_json(child_config_json(load_config(toml)))
    assert child.train.batch_size == 64 and "batch_size" in child.train.model_fields_set
    assert child.models == {"sasrec": {"hidden_size": 32}}


def test_each_model_keeps_its_tuned_patience_unless_train_sets_one() -> None:
    from models.recommenders import create
    from models.recommenders.base import TrainConfig

    gru4rec, sasrec = create("gru4rec", 10), create("sasrec", 10)
    assert gru4rec.resolve_hyper(TrainConfig()).patience == 10  # RecBole's stopping_step
    assert sasrec.resolve_hyper(TrainConfig()).patience == 5
    assert gru4rec.resolve_hyper(TrainConfig(patience=3)).patience == 3
    # The packaged config sets no patience: loading it must not override the models'.
    assert "patience" not in load_config(None).train.model_fields_set
