"""``models.reference``: the RecBole 1.2.1 transcriptions and ``bench reference``."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonrec.bench_reference import (bench_reference, checkpoint_path, reference_bench_name,
                                    reference_ndcg10, seeds_at_defaults)
from models.protocol import EvalSet, LeaveOneOut
from models.recommenders import create
from models.reference import REFERENCE_MODELS, SRGNN
from models.reference.gru4rec import GRU4RecConfig
from models.reference.presets import ReferencePreset, reference_config
from models.recommenders.base import resolve_device
from models.reference.trainer import (FullSortScorer, OverallConfig, _fingerprint,
                                      cpu_deterministic, evaluate_reference, fit_reference,
                                      prefix_augmentation, torch_threads)
from reasonrec.config import load_config
from tests.models.single_thread import one_torch_thread  # noqa: F401 (autouse fixture)

N_ITEMS = 12  # RecBole's n_items: 11 real items + padding id 0
MAX_LEN = 6


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([1, 3, 6, 4, 2])
    items = torch.randint(1, N_ITEMS, (len(lengths), MAX_LEN), generator=gen)
    items[torch.arange(MAX_LEN)[None] >= lengths[:, None]] = 0  # right padding, as RecBole
    targets = torch.randint(1, N_ITEMS, (len(lengths),), generator=gen)
    return items, lengths, targets


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_shapes_and_loss(name: str):
    torch.manual_seed(2020)
    model = REFERENCE_MODELS[name](N_ITEMS, MAX_LEN)
    items, lengths, targets = _batch()
    out = model(items, lengths)
    assert out.shape == (5, 64)
    scores = model.full_sort_predict(items, lengths)
    assert scores.shape == (5, N_ITEMS)  # every id, padding column included
    loss = model.calculate_loss(items, lengths, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # CE over all n_items ids; near log(n_items) at initialisation.
    assert abs(float(loss.detach()) - np.log(N_ITEMS)) < 1.0
    loss.backward()
    assert model.item_embedding.weight.grad is not None
    model.eval()  # no dropout: the loss is the softmax CE of the full-sort scores
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model.full_sort_predict(items, lengths), targets)
        assert torch.allclose(model.calculate_loss(items, lengths, targets), expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_output_ignores_padding_width_and_later_items(name: str):
    """The representation only depends on the real prefix (causal, padding masked)."""
    torch.manual_seed(2020)
    model = REFERENCE_MODELS[name](N_ITEMS, 10).eval()
    items, lengths, _ = _batch(1)
    wide = torch.cat([items, torch.zeros(5, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(items, lengths), model(wide, lengths), atol=1e-5)


def test_default_hyper_parameters_are_recbole_yaml():
    gru = REFERENCE_MODELS["gru4rec"](N_ITEMS)
    assert (gru.embedding_size, gru.hidden_size, gru.num_layers, gru.dropout_prob) == (64, 128, 1, 0.3)
    assert gru.gru_layers.bias is False
    sas = REFERENCE_MODELS["sasrec"](N_ITEMS)
    assert (sas.n_layers, sas.n_heads, sas.hidden_size, sas.inner_size) == (2, 2, 64, 256)
    assert (sas.hidden_dropout_prob, sas.attn_dropout_prob, sas.hidden_act) == (0.5, 0.5, "gelu")
    assert sas.position_embedding.num_embeddings == 50
    gnn = REFERENCE_MODELS["srgnn"](N_ITEMS)
    assert (gnn.embedding_size, gnn.step) == (64, 1)


def test_srgnn_batched_slice_equals_recbole_loop():
    gen = torch.Generator().manual_seed(3)
    items = torch.randint(1, 7, (40, 9), generator=gen)
    lengths = torch.randint(1, 10, (40,), generator=gen)
    items[torch.arange(9)[None] >= lengths[:, None]] = 0
    items[0] = torch.tensor([1, 2, 3, 2, 4, 0, 0, 0, 0])   # the example in RecBole's docstring
    items[1] = torch.tensor([5, 5, 5, 5, 5, 5, 5, 5, 5])   # one node with a self loop, no padding
    for loop, batched in zip(SRGNN.get_slice_loop(items), SRGNN._get_slice(items)):
        assert loop.dtype == batched.dtype and torch.equal(loop, batched)
    _alias, adjacency, _items, _mask = SRGNN._get_slice(items[:1])
    # Node order is sorted ids (0, 1, 2, 3, 4); item 2 (node 2) has out-edges to 3 and 4 (1/2 each).
    assert adjacency[0, 2, 9 + 3] == adjacency[0, 2, 9 + 4] == 0.5
    assert adjacency[0, 2, 1] == adjacency[0, 2, 3] == 0.5        # in-edges from 1 and 3


def test_prefix_augmentation_on_a_hand_made_history():
    data = prefix_augmentation([np.array([1, 2, 3, 4]), np.array([7]), np.array([5, 6])], max_len=2)
    # <1>|2, <1,2>|3, <2,3>|4 (only the last 2 kept); [7] gives none; <5>|6.
    assert len(data) == 4
    assert data.targets.tolist() == [2, 3, 4, 6]
    assert data.lengths.tolist() == [1, 2, 2, 1]
    assert data.items.tolist() == [[1, 0], [1, 2], [2, 3], [5, 0]]
    # A loo training history h[:-2] of n items gives n - 1 samples (targets h[1..n-1]).
    assert len(prefix_augmentation([np.arange(1, 61)], max_len=50)) == 59


def _tiny_split() -> LeaveOneOut:
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, N_ITEMS, size=int(rng.integers(5, 12))) for _ in range(16)]
    def eval_set(cut: int) -> EvalSet:
        return EvalSet(np.arange(16), [h[:len(h) - cut][-50:] for h in histories],
                       np.array([h[len(h) - cut] for h in histories]))
    return LeaveOneOut(train=[h[:-2] for h in histories], valid=eval_set(2), test=eval_set(1),
                       n_items=N_ITEMS - 1, max_len=50)


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_fit_is_deterministic_and_restores_the_best(name: str):
    split = _tiny_split()
    with cpu_deterministic():
        first = fit_reference(name, split, max_epochs=3)
        second = fit_reference(name, split, max_epochs=3)
    assert first.test == second.test
    assert [e["loss"] for e in first.epochs] == [e["loss"] for e in second.epochs]
    assert first.stopped_by == "epoch_cap" and len(first.epochs) == 3
    best = max(range(3), key=lambda i: (first.epochs[i]["valid_mrr10"], i))  # >= keeps the later
    assert first.best_epoch == best + 1
    # The restored weights are the best epoch's: validation gives its MRR@10 again.
    assert evaluate_reference(first.model, split, "valid")["MRR@10"] == first.epochs[best]["valid_mrr10"]
    scorer = FullSortScorer(first.model, 50)
    assert scorer.score(torch.tensor([[1, 2]]), torch.tensor([2])).shape == (1, N_ITEMS)


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_a_resumed_fit_ends_exactly_like_an_uninterrupted_one(name: str, tmp_path: Path):
    split = _tiny_split()
    checkpoint = tmp_path / f"{name}.ckpt"
    with cpu_deterministic():
        straight = fit_reference(name, split, max_epochs=4)
        # "Killed" after epoch 2: the cap stops the call, the checkpoint stays.
        fit_reference(name, split, max_epochs=2, checkpoint=checkpoint)
        lines: list[str] = []
        resumed = fit_reference(name, split, max_epochs=4, checkpoint=checkpoint, log=lines.append)
    assert "resuming" in lines[0] and "after epoch 2" in lines[0]
    assert [e["loss"] for e in resumed.epochs] == [e["loss"] for e in straight.epochs]
    assert [e["valid_mrr10"] for e in resumed.epochs] == [e["valid_mrr10"] for e in straight.epochs]
    assert resumed.best_epoch == straight.best_epoch and resumed.test == straight.test
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_a_checkpoint_of_another_setup_is_not_resumed(tmp_path: Path):
    split = _tiny_split()
    checkpoint = tmp_path / "ref.ckpt"
    with cpu_deterministic():
        fit_reference("gru4rec", split, max_epochs=1, checkpoint=checkpoint)
        lines: list[str] = []
        other = fit_reference("sasrec", split, max_epochs=1, checkpoint=checkpoint, log=lines.append)
        checkpoint.write_bytes(b"not a checkpoint")
        damaged: list[str] = []
        fit_reference("gru4rec", split, max_epochs=1, checkpoint=checkpoint, log=damaged.append)
    assert "another model" in lines[0] and len(other.epochs) == 1
    assert "unreadable checkpoint" in damaged[0]


def test_an_early_stopped_checkpoint_is_only_retested(tmp_path: Path):
    split = _tiny_split()
    checkpoint = tmp_path / "ref.ckpt"
    overall = OverallConfig(stopping_step=0)  # stops at the first epoch that does not improve
    with cpu_deterministic():
        first = fit_reference("gru4rec", split, overall=overall, checkpoint=checkpoint)
        lines: list[str] = []
        again = fit_reference("gru4rec", split, overall=overall, checkpoint=checkpoint,
                              log=lines.append)
    assert first.stopped_by == again.stopped_by == "early_stopping"
    assert "already early-stopped" in lines[0]
    assert again.epochs == first.epochs and again.test == first.test


def test_fit_runs_on_the_device_it_is_given_and_says_so():
    split = _tiny_split()
    with cpu_deterministic():
        on_cpu = fit_reference("sasrec", split, max_epochs=2)
        auto = fit_reference("sasrec", split, max_epochs=2, device="auto")
    assert on_cpu.device == on_cpu.summary()["device"] == "cpu"
    assert auto.device == resolve_device("auto").type
    assert next(auto.model.parameters()).device.type == auto.device
    if auto.device == "cpu":  # same device, same floats
        assert auto.test == on_cpu.test


def test_a_checkpoint_is_resumed_only_on_the_device_type_it_was_saved_on():
    split = _tiny_split()
    data = prefix_augmentation(split.train, 50)
    cpu, gpu = (_fingerprint("sasrec", OverallConfig(), data, split, None, torch.device(d))
                for d in ("cpu", "cuda"))
    assert cpu != gpu  # a CPU run is never continued with CUDA floats, nor the other way round
    assert cpu == _fingerprint("sasrec", OverallConfig(), data, split, None, torch.device("cpu"))


def test_torch_threads_is_restored_on_exit():
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def _fake_run(runs: Path, name: str, ndcg10: float, run_id: str = "20000101-000000-0000",
              params: dict | None = None, seed: int | None = None) -> None:
    run = runs / "ml-100k" / name / run_id
    run.mkdir(parents=True)
    test = {f"{m}@{k}": ndcg10 for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    config = {"model": name, "params": params or {}}
    if seed is not None:
        config["train"] = {"seed": seed}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"test": test, "valid": test}))


@pytest.mark.slow
def test_bench_reference_on_ml100k_one_short_epoch(ml100k_dir: Path, tmp_path: Path):
    config = load_config(overrides={"data": {"path": str(ml100k_dir), "data_dir": str(tmp_path)}})
    for name in ("gru4rec", "sasrec", "srgnn"):  # ours, so the bench reads a run, trains none
        _fake_run(tmp_path / "runs", name, 0.0 if name == "sasrec" else 0.5)
    result = bench_reference(config, max_epochs=1, max_batches=1)
    json.dumps(result)
    assert result["dataset"] == "ml-100k" and result["protocol"] == "loo"
    assert result["machine"]["device"] == "cpu"  # the default: deterministic
    assert [r["model"] for r in result["models"]] == ["gru4rec", "sasrec", "srgnn"]
    for row in result["models"]:
        ref = row["reference"]
        assert ref["epochs"] == ref["best_epoch"] == 1 and ref["stopped_by"] == "epoch_cap"
        assert ref["n_train_samples"] == 100_000 - 3 * 943  # every training prefix
        assert ref["n_users"] == 943 and 20 < ref["peak_rss_mb"] < 8192
        assert ref["device"] == "cpu" and ref["peak_gpu_mb"] is None
        assert 0 < ref["seconds_to_best"] <= ref["total_seconds"] + 1e-6
        assert set(ref["test"]) == {f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
        assert 0 <= ref["test"]["NDCG@10"] < 0.5
        assert row["ours"]["trained_now"] is False
        ours = row["ours"]["test"]["NDCG@10"]
        assert row["ours_minus_reference_ndcg10"] == pytest.approx(ours - ref["test"]["NDCG@10"])
        assert row["meets_bar"] is (ours >= ref["test"]["NDCG@10"])
        assert row["ours_over_seeds"] is None and row["bar_judged_on"] == "latest run"
        assert row["reference_converged"] is False  # capped at one epoch
    assert result["models"][0]["meets_bar"] and result["models"][2]["meets_bar"]


@pytest.mark.slow
def test_bench_reference_over_seeds_judges_mean_against_mean(ml100k_dir: Path, tmp_path: Path):
    config = load_config(overrides={"data": {"path": str(ml100k_dir), "data_dir": str(tmp_path)}})
    _fake_run(tmp_path / "runs", "gru4rec", 0.03)
    result = bench_reference(config, ["gru4rec"], max_epochs=1, max_batches=1, seeds=[2020, 7],
                             isolate=False, threads=1)
    row = result["models"][0]
    seeds = row["reference_over_seeds"]
    assert seeds["seeds"] == [2020, 7] and [r["seed"] for r in seeds["runs"]] == [2020, 7]
    assert row["reference"] == seeds["runs"][0]
    first, second = seeds["test_ndcg10"]
    assert first != second  # another seed is another model
    assert reference_ndcg10(row) == pytest.approx((first + second) / 2)
    assert row["ours_minus_reference_ndcg10"] == pytest.approx(0.03 - (first + second) / 2)
    assert row["bar_judged_on"] == "latest run vs reference mean over 2 seeds"
    for run in seeds["runs"]:
        assert run["torch_threads"] == 1 and 20 < run["peak_rss_mb"] < 8192
    # each seed checkpoints apart; 2020, RecBole's, keeps the unsuffixed name of older runs
    assert checkpoint_path(config.bench_dir, "ml-100k", "gru4rec").name == "ml-100k-gru4rec.ckpt"
    assert checkpoint_path(config.bench_dir, "ml-100k", "gru4rec", 7).exists()
    assert checkpoint_path(config.bench_dir, "ml-100k", "gru4rec").exists()
    # runs of ours at today's defaults, one per seed: the bar compares the two means and
    # says over how many seeds each side is
    defaults = create("gru4rec", 1682).params.model_dump()
    _fake_run(tmp_path / "runs", "gru4rec", 0.02, "20000101-000001-0000", defaults, seed=1)
    _fake_run(tmp_path / "runs", "gru4rec", 0.05, "20000101-000002-0000", defaults, seed=2)
    _fake_run(tmp_path / "runs", "gru4rec", 0.08, "20000101-000003-0000", defaults, seed=3)
    row = bench_reference(config, ["gru4rec"], max_epochs=1, max_batches=1, seeds=[2020, 7],
                          isolate=False, threads=1)["models"][0]
    assert row["ours_over_seeds"]["seeds"] == [1, 2, 3]
    assert row["bar_judged_on"] == "mean over 3 seeds vs reference mean over 2 seeds"
    assert row["ours_minus_reference_ndcg10"] == pytest.approx(0.05 - (first + second) / 2)
    with pytest.raises(ValueError, match="seeds repeat"):
        bench_reference(config, ["gru4rec"], seeds=[1, 1])


def test_seeds_at_defaults_keeps_the_newest_run_per_seed(tmp_path: Path):
    defaults = {"hidden_size": 64}
    runs = tmp_path / "ml-100k" / "gru4rec"

    def run(run_id: str, seed: int, ndcg10: float, params: dict | None = None) -> None:
        folder = runs / run_id
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(
            {"params": params or defaults, "train": {"seed": seed}}))
        (folder / "metrics.json").write_text(json.dumps({"test": {"NDCG@10": ndcg10}}))

    run("20260101-000000-a", 1, 0.01)
    # one seed is not a spread
    assert seeds_at_defaults(tmp_path, "ml-100k", "gru4rec", defaults) is None
    run("20260101-000001-b", 2, 0.06)
    run("20260101-000002-c", 1, 0.05)                       # seed 1 again: the newer counts
    run("20260101-000003-d", 3, 0.90, {"hidden_size": 32})  # other params: not today's model
    (runs / "20260101-000004-e").mkdir()                    # unfinished: no files
    seeds = seeds_at_defaults(tmp_path, "ml-100k", "gru4rec", defaults)
    assert seeds is not None and sorted(seeds["seeds"]) == [1, 2]
    assert seeds["test_ndcg10_mean"] == pytest.approx(0.055)
    assert seeds["test_ndcg10_std"] == pytest.approx(0.00707107, rel=1e-5)
    assert seeds_at_defaults(tmp_path, "ml-100k", "sasrec", defaults) is None  # no runs at all


def test_bench_reference_rejects_unknown_model(tmp_path: Path):
    config = load_config(overrides={"data": {"data_dir": str(tmp_path)}})
    with pytest.raises(ValueError, match="no reference for 'pop'"):
        bench_reference(config, ["gru4rec", "pop"])
    with pytest.raises(RuntimeError, match="device type"):  # before any training
        bench_reference(config, ["gru4rec"], device="gpu")


def test_presets_are_named_and_checkpoint_apart(tmp_path: Path):
    default = reference_config("gru4rec")
    assert default.preset is ReferencePreset.DEFAULT
    assert default.overall == OverallConfig() and default.model is None
    tuned = reference_config("gru4rec", "tuned", seed=7)
    assert tuned.overall == replace(OverallConfig(seed=7), train_batch_size=256,
                                    valid_metric="NDCG@10")
    assert tuned.model == GRU4RecConfig(64, 128, 1, 0.3)
    assert tuned.describe()["overall"]["train_batch_size"] == 256
    with pytest.raises(ValueError, match="no tuned configuration for sasrec"):
        reference_config("sasrec", "tuned")
    with pytest.raises(ValueError, match="unknown reference configuration 'best'"):
        reference_config("gru4rec", "best")
    # a tuned run never resumes (or overwrites) a default-config checkpoint
    assert checkpoint_path(tmp_path, "ml-100k", "gru4rec", 2020, "tuned").name == \
        "ml-100k-gru4rec-tuned.ckpt"
    assert checkpoint_path(tmp_path, "ml-100k", "gru4rec", 1, "tuned").name == \
        "ml-100k-gru4rec-tuned-seed1.ckpt"
    assert checkpoint_path(tmp_path, "ml-100k", "gru4rec", 1).name == "ml-100k-gru4rec-seed1.ckpt"
    assert reference_bench_name("cpu", "tuned") == "reference-tuned"
    assert reference_bench_name("cpu") == "reference"
    assert reference_bench_name("cuda", "tuned") == "reference-cuda-tuned"


def test_model_config_is_part_of_the_fingerprint():
    split = _tiny_split()
    data = prefix_augmentation(split.train, split.max_len)
    cpu = torch.device("cpu")
    overall = OverallConfig()
    plain = _fingerprint("gru4rec", overall, data, split, None, cpu)
    assert plain == _fingerprint("gru4rec", overall, data, split, None, cpu, None)
    assert plain != _fingerprint("gru4rec", overall, data, split, None, cpu, GRU4RecConfig())
    assert _fingerprint("gru4rec", overall, data, split, None, cpu, GRU4RecConfig()) != \
        _fingerprint("gru4rec", overall, data, split, None, cpu, GRU4RecConfig(dropout_prob=0.2))


@pytest.mark.slow
def test_tuned_preset_reaches_model_and_trainer(ml100k_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    config = load_config(overrides={"data": {"path": str(ml100k_dir), "data_dir": str(tmp_path)}})
    _fake_run(tmp_path / "runs", "gru4rec", 0.05)
    batches: list[int] = []
    loss = REFERENCE_MODELS["gru4rec"].calculate_loss

    def counting(self, item_seq, item_seq_len, pos_items):  # type: ignore[no-untyped-def]
        batches.append(int(item_seq.shape[0]))
        return loss(self, item_seq, item_seq_len, pos_items)

    monkeypatch.setattr(REFERENCE_MODELS["gru4rec"], "calculate_loss", counting)
    default = bench_reference(config, ["gru4rec"], max_epochs=1, max_batches=2, isolate=False,
                              threads=1)["models"][0]
    assert batches == [2048, 2048] and default["reference_config"]["preset"] == "default"
    batches.clear()
    result = bench_reference(config, ["gru4rec"], max_epochs=1, max_batches=2, isolate=False,
                             threads=1, preset="tuned")
    row = result["models"][0]
    assert batches == [256, 256]  # trained, not resumed from the default checkpoint
    assert result["reference"]["preset"] == "tuned"
    assert row["reference_config"] == reference_config("gru4rec", "tuned").describe()
    ref = row["reference"]
    assert ref["reference_config"]["overall"]["valid_metric"] == "NDCG@10"
    assert ref["reference_config"]["overall"]["train_batch_size"] == 256
    assert ref["hyper_parameters"] == asdict(GRU4RecConfig(64, 128, 1, 0.3))
    assert ref["epoch_log"][0]["valid_mrr10"] < ref["epoch_log"][0]["valid_ndcg10"]
    assert ref["valid"]["NDCG@10"] == ref["epoch_log"][0]["valid_ndcg10"]
    tuned_ckpt = checkpoint_path(config.bench_dir, "ml-100k", "gru4rec", preset="tuned")
    default_ckpt = checkpoint_path(config.bench_dir, "ml-100k", "gru4rec")
    assert tuned_ckpt != default_ckpt and tuned_ckpt.exists() and default_ckpt.exists()
    # each preset resumes its own finished epoch: no batch trains again
    batches.clear()
    again = bench_reference(config, ["gru4rec"], max_epochs=1, max_batches=2, isolate=False,
                            threads=1, preset="tuned")["models"][0]
    assert batches == [] and again["reference"]["test"] == ref["test"]


@pytest.mark.parametrize(("preset_args", "needle"), [
    (["--reference-config", "best"], "--reference-config must be default or tuned, got 'best'"),
    (["--models", "sasrec", "--reference-config", "tuned"],
     "no tuned configuration for sasrec; tuned exists for gru4rec"),
])
def test_cli_rejects_a_preset_in_one_line_before_training(tmp_path: Path, preset_args: list[str],
                                                          needle: str):
    result = subprocess.run([sys.executable, "-m", "reasonrec.cli", "--data-dir", str(tmp_path),
                             "bench", "reference", *preset_args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {needle}"
    assert not (tmp_path / "bench" / "reference").exists()  # nothing trained, nothing saved
