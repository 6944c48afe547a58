"""Fused training on real ml-100k: samples from ``loo``, fit, save/load, bootstrap, bench."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.bench_fusion import bench_fusion
from models.data import Dataset
from models.fusion import create as create_fusion
from models.fusion.fit import find_fusion_run, load_fusion_run, rank_samples, save_fusion_run
from models.fusion.samples import VARIANTS, place_graph, sample_users, variant
from models.fusion.strategy import StrategyContext
from models.fusion.settings import VARIANT_NAMES, FusionSettings, Selection
from models.fusion.train import score_samples
from models.fusion.workspace import FusionWorkspace, choose_base
from models.graph_data import IntentIndex
from models.metrics import metrics_from_ranks, per_user_metrics
from models.protocol import leave_one_out
from models.recommenders import TrainConfig, create
from models.stats import bootstrap_indices, bootstrap_mean, paired_bootstrap, paired_table
from reasonrec.config import ConfigError, load_config
from tests.models.fusion_setup import HashEncoder, small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def workspace(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> FusionWorkspace:
    return small_workspace(ml100k, tmp_path_factory.mktemp("runs"))


# ------------------------------------------------------------------ bootstrap
def test_paired_bootstrap_matches_a_hand_computation() -> None:
    a = np.array([0.0, 1.0, 0.5, 0.0, 0.25])
    b = np.array([1.0, 1.0, 0.0, 0.5, 0.25])
    result = paired_bootstrap(a, b, resamples=200, seed=7)
    draws = bootstrap_indices(len(a), 200, 7)
    # By hand: the mean difference of each resample, sorted, then the 2.5% and
    # 97.5% points by linear interpolation between order statistics.
    means = sorted(sum(b[i] - a[i] for i in row) / len(row) for row in draws)

    def quantile(q: float) -> float:
        position = q * (len(means) - 1)
        low = math.floor(position)
        return means[low] + (position - low) * (means[min(low + 1, len(means) - 1)] - means[low])

    assert result.diff.mean == pytest.approx(0.2)              # (1 + 0 - .5 + .5 + 0) / 5
    assert result.diff.low == pytest.approx(quantile(0.025))
    assert result.diff.high == pytest.approx(quantile(0.975))
    assert result.a.mean == pytest.approx(0.35) and result.b.mean == pytest.approx(0.55)
    assert result.relative == pytest.approx(0.2 / 0.35) and result.n == 5
    # Same seed, same draws: a model's own interval is the same in both calls.
    assert bootstrap_mean(a, resamples=200, seed=7) == result.a
    # A constant difference has a zero-width interval; a paired one is significant.
    shifted = paired_bootstrap(a, a + 0.1, resamples=50, seed=1)
    assert shifted.diff.low == pytest.approx(0.1) == shifted.diff.high and shifted.significant
    assert not paired_bootstrap(a, a, resamples=50, seed=1).significant


def test_paired_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(np.zeros(3), np.zeros(3), level=1.5)
    with pytest.raises(ValueError, match="metric names differ"):
        paired_table({"HR@10": np.zeros(2)}, {"NDCG@10": np.zeros(2)})


# ---------------------------------------------------------------- settings
def test_settings_are_the_config_fusion_section_and_name_the_bad_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="command-line flags: field 'fusion.users'"):
        load_config(overrides={"fusion": {"users": 0}})
    with pytest.raises(ConfigError, match="fusion.base_model.*fusion needs a neural model"):
        load_config(overrides={"fusion": {"base_model": "pop"}})
    path = tmp_path / "c.toml"
    path.write_text("[fusion]\nvariant = 'nope'\n")
    with pytest.raises(ConfigError, match="c.toml: field 'fusion.variant'.*unknown variant 'nope'"):
        load_config(path)
    path.write_text("[fusion]\nusers = 5\n")
    config = load_config(path, {"fusion": {"users": None, "seed": 3}})   # None flags ignored
    assert (config.fusion.users, config.fusion.seed, config.fusion.variant) == (5, 3, "llmrg")
    assert tuple(VARIANTS) == VARIANT_NAMES


# ------------------------------------------------------------ samples and points
def test_user_sample_is_seeded_and_points_follow_loo(workspace: FusionWorkspace) -> None:
    split = workspace.split
    assert np.array_equal(workspace.users, sample_users(split, 24, workspace.settings.seed))
    assert not np.array_equal(workspace.users, sample_users(split, 24, 99))
    assert len(sample_users(split, 10_000, 0)) == len(split.test.users)   # capped: everyone
    valid_input = dict(zip(split.valid.users.tolist(), split.valid.inputs))
    test_input = dict(zip(split.test.users.tolist(), split.test.inputs))
    test_target = dict(zip(split.test.users.tolist(), split.test.targets.tolist()))
    valid_target = dict(zip(split.valid.users.tolist(), split.valid.targets.tolist()))
    counts = {"train": 0, "valid": 0, "test": 0}
    for point in workspace.points.points:
        user = point.user
        counts[point.role] += 1
        history = user.base_input(point.step)[-split.max_len:]
        if point.role == "test":
            assert point.target == test_target[user.user]
            assert history.tolist() == test_input[user.user].tolist()
        elif point.role == "valid":
            assert point.target == valid_target[user.user]
            assert history.tolist() == valid_input[user.user].tolist()
        else:   # a training target: inside the training part of the history
            assert user.offset + point.step + 1 < len(split.train[user.user])
    assert counts == {"train": 24 * 4, "valid": 24, "test": 24}


def test_a_graph_of_another_window_is_rejected(workspace: FusionWorkspace) -> None:
    user = workspace.user_graphs[0]
    graph = user.graph.copy()
    graph.graph["window"] = list(reversed(graph.graph["window"]))
    with pytest.raises(ValueError, match="not the 10 items before their test target"):
        place_graph(workspace.dataset, user.user_id, graph, workspace.intents)
    with pytest.raises(ValueError, match="given for"):
        place_graph(workspace.dataset, "1", user.graph, workspace.intents)
    earlier = user.graph.copy()
    earlier.graph["target_position"] -= 1
    with pytest.raises(ValueError, match="not before their test target"):
        place_graph(workspace.dataset, user.user_id, earlier, workspace.intents)


# ------------------------------------------------------------------- fitting
def test_fused_model_trains_an_epoch_evaluates_saves_and_reloads(
        workspace: FusionWorkspace) -> None:
    run = workspace.fit("llmrg")
    assert 1 <= len(run.report.epochs) <= 2 and run.report.epochs[0].loss > 0
    assert run.report.best_valid["NDCG@10"] >= run.report.epochs[0].valid_ndcg10 - 1e-12
    assert set(run.metrics) == {"valid", "test", "n_users"} and run.metrics["n_users"] == 24
    ranks = workspace.ranks(run, "test")
    assert ranks.shape == (24,) and (ranks >= 0).all()
    assert run.metrics["test"]["NDCG@10"] == pytest.approx(
        float(per_user_metrics(ranks)["NDCG@10"].mean()))
    # Saved, found by its fingerprint, reloaded with identical scores.
    fingerprint = {**workspace.fingerprint, "variant": "llmrg"}
    assert find_fusion_run(workspace.runs_root, "ml-100k", "llmrg", fingerprint) == run.directory
    assert find_fusion_run(workspace.runs_root, "ml-100k", "llmrg",
                           {**fingerprint, "graphs": "other"}) is None
    loaded = load_fusion_run(run.directory)
    samples = workspace.samples("llmrg", "test")
    assert np.array_equal(rank_samples(loaded.strategy, samples), ranks)
    assert workspace.fused("llmrg").directory == run.directory     # reused, not retrained
    with pytest.raises(FileNotFoundError, match="not a fusion run"):
        load_fusion_run(workspace.runs_root)


def test_fused_run_with_text_vectors_saves_and_reloads_identically(
        workspace: FusionWorkspace, tmp_path: Path) -> None:
    encoder = HashEncoder()
    settings = workspace.settings.model_copy(update={"epochs": 1})

    def text_workspace(enc: HashEncoder) -> FusionWorkspace:
        return FusionWorkspace(workspace.dataset, workspace.split, workspace.base,
                               workspace.source, settings, tmp_path / "runs",
                               intent_encoder=enc, intent_cache_dir=tmp_path / "cache")

    ws = text_workspace(encoder)
    run = ws.fit("llmrg")
    assert encoder.calls == 1 and encoder.texts == list(ws.intents.labels)
    # fusion.json stays JSON: the table's shape, not the table (a buffer in model.pt).
    meta = json.loads((run.directory / "fusion.json").read_text())
    assert meta["kwargs"] == {"steps": settings.gnn_steps, "num_intents": len(ws.intents),
                              "text_dim": 8}
    loaded = load_fusion_run(run.directory)
    assert loaded.intents == ws.intents and run.intents == ws.intents
    (key,) = [k for k in loaded.strategy.state_dict() if k.endswith("intent_vectors")]
    assert torch.equal(loaded.strategy.state_dict()[key], ws.intent_table)
    samples = ws.samples("llmrg", "test")
    assert torch.equal(score_samples(loaded.strategy, samples),
                       score_samples(run.strategy, samples))
    # The explainer of the loaded run reads texts through the run's own rows.
    explainer = ws.explainer(loaded)
    assert explainer.intents is loaded.intents
    assert explainer.user_graph(ws.user_graphs[0].user_id).intents is loaded.intents
    other = IntentIndex(["a text only this run knew", *ws.intents.labels[:-1]])
    assert ws.explainer(replace(loaded, intents=other)).intents is other
    with pytest.raises(ValueError, match="no intents.json"):
        ws.explainer(replace(loaded, intents=None,
                             meta={**loaded.meta, "kwargs": {"num_intents": 3}}))
    # A second process: the fingerprint needs no vectors; the run is reused, the
    # encoder never called.
    again = HashEncoder()
    assert text_workspace(again).fused("llmrg").directory == run.directory and again.calls == 0

    # Random (non-identity) weights, so intent vectors move the scores: a saved
    # and reloaded model scores identically, and its table is the one it uses.
    kwargs = VARIANTS["llmrg"].model_kwargs(StrategyContext(ws.intents, ws.intent_table, 1))
    torch.manual_seed(0)
    strategy = create_fusion("llmrg", ws.dataset.n_items, ws.item_table.shape[1],
                             item_init=ws.item_table, identity_init=False, **kwargs).eval()
    saved = save_fusion_run(tmp_path / "random", "ml-100k", "llmrg", strategy, kwargs,
                            {"test": True}, run.report, {}, intents=ws.intents)
    back = load_fusion_run(saved.directory)
    scores = score_samples(strategy, samples)
    assert torch.equal(score_samples(back.strategy, samples), scores)
    with torch.no_grad():
        back.strategy.state_dict()[key].zero_()
    assert not torch.equal(score_samples(back.strategy, samples), scores)


def test_fingerprint_names_the_intent_vocabulary_and_encoder(workspace: FusionWorkspace,
                                                             tmp_path: Path) -> None:
    def make(encoder: HashEncoder | None, labels: tuple[str, ...] | None = None) -> dict:
        ws = FusionWorkspace(workspace.dataset, workspace.split, workspace.base, workspace.source,
                             workspace.settings, tmp_path, intent_encoder=encoder,
                             intent_cache_dir=tmp_path if encoder else None)
        if labels is not None:
            ws.labels = labels
        return ws.fingerprint

    learned = make(None)
    assert learned["intents"]["encoder"] == "learned" and learned == workspace.fingerprint
    text = make(HashEncoder())
    assert text["intents"]["encoder"] == "hash-encoder-v1" and text != learned
    assert make(HashEncoder(identity="another encoder")) != text
    fewer = make(HashEncoder(), workspace.labels[1:])      # the dropped label moves rows
    assert fewer["intents"]["texts"] != text["intents"]["texts"]
    with pytest.raises(ValueError, match="intent_cache_dir"):
        FusionWorkspace(workspace.dataset, workspace.split, workspace.base, workspace.source,
                        workspace.settings, tmp_path, intent_encoder=HashEncoder())


def test_same_seed_same_model_and_frozen_parts_stay(workspace: FusionWorkspace) -> None:
    first = workspace.fit("seqgraph").strategy.state_dict()
    second = workspace.fit("seqgraph").strategy.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    table = workspace.item_table
    assert torch.equal(first["item_embedding.weight"], table)              # freeze_items
    width = table.shape[1]
    assert torch.equal(first["project.weight"][:, -width:], torch.eye(width))  # freeze_base
    assert torch.equal(first["project.bias"], torch.zeros(width))


def test_fit_keeps_the_base_model_when_no_epoch_beats_it(workspace: FusionWorkspace,
                                                         tmp_path: Path) -> None:
    # A learning rate this large wrecks the first epoch; with selection "best", early
    # stopping must then return the starting point, which scores exactly as the base model.
    settings = workspace.settings.model_copy(update={
        "users": 12, "learning_rate": 50.0, "freeze_base": False, "epochs": 2, "patience": 1,
        "selection": Selection.BEST})
    ws = FusionWorkspace(workspace.dataset, workspace.split, workspace.base, workspace.source,
                         settings, tmp_path)
    run = ws.fit("llmrg")
    assert run.report.best_epoch == 0 and len(run.report.epochs) == 1
    assert np.array_equal(ws.ranks(run, "test"), ws.base_ranks("test"))
    assert run.report.start_valid == run.report.best_valid


def test_trained_selection_keeps_a_trained_epoch_and_reports_the_start(
        workspace: FusionWorkspace, tmp_path: Path) -> None:
    # The same wrecked first epoch: the default selection keeps a trained epoch anyway (the
    # fused model must show what its inputs do) and reports the start's score beside it.
    settings = workspace.settings.model_copy(update={
        "users": 12, "learning_rate": 50.0, "freeze_base": False, "epochs": 2, "patience": 1})
    assert settings.selection is Selection.TRAINED
    ws = FusionWorkspace(workspace.dataset, workspace.split, workspace.base, workspace.source,
                         settings, tmp_path)
    run = ws.fit("llmrg")
    report = run.report
    assert report.best_epoch >= 1 and report.start_valid is not None
    assert report.best_valid["NDCG@10"] == max(e.valid_ndcg10 for e in report.epochs)
    base_valid = metrics_from_ranks(ws.base_ranks("valid"))
    assert report.start_valid["NDCG@10"] == pytest.approx(base_valid["NDCG@10"])
    assert not np.array_equal(ws.ranks(run, "test"), ws.base_ranks("test"))
    # a run of the other rule is another model: it is never reused for this one
    assert ws.run_fingerprint(variant("llmrg")) != FusionWorkspace(
        workspace.dataset, workspace.split, workspace.base, workspace.source,
        settings.model_copy(update={"selection": Selection.BEST}), tmp_path
    ).run_fingerprint(variant("llmrg"))


def test_choose_base_takes_the_best_saved_run(ml100k: Dataset, tmp_path: Path) -> None:
    split = leave_one_out(ml100k)
    for name, ndcg in (("gru4rec", 0.02), ("sasrec", 0.05)):
        params = {"embedding_size": 8, "hidden_size": 8} if name == "gru4rec" else {
            "hidden_size": 8, "inner_size": 8}
        run = tmp_path / "ml-100k" / name / "20260101-000000-abcd"
        create(name, split.n_items, params).save(run / "model")
        (run / "config.json").write_text(json.dumps({"model": name}))
        (run / "metrics.json").write_text(json.dumps({"valid": {"NDCG@10": ndcg}}))
    base = choose_base(tmp_path, "ml-100k", split, FusionSettings(), TrainConfig())
    assert base.name == "sasrec" and base.valid_ndcg10 == 0.05
    named = choose_base(tmp_path, "ml-100k", split, FusionSettings(base_model="gru4rec"),
                        TrainConfig())
    assert named.name == "gru4rec"


def test_bench_refuses_a_small_sample_and_reports_rows(workspace: FusionWorkspace) -> None:
    with pytest.raises(ValueError, match="at least 300 users"):
        bench_fusion(workspace)
    with pytest.raises(ValueError, match="unknown fusion variant"):
        bench_fusion(workspace, variants=["llmrg", "gpt"], min_users=1)
    result = bench_fusion(workspace, variants=["seqgraph", "llmrg"], min_users=1)
    json.dumps(result)
    assert [r["name"] for r in result["rows"]] == ["base", "seqgraph", "llmrg"]
    metrics = {f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)}
    for row in result["rows"]:
        assert set(row["metrics"]) == metrics
        for value in row["metrics"].values():
            assert value["low"] <= value["mean"] <= value["high"]
    llmrg = result["rows"][2]["vs_base"]["NDCG@10"]
    assert llmrg["diff"]["mean"] == pytest.approx(
        result["rows"][2]["metrics"]["NDCG@10"]["mean"]
        - result["rows"][0]["metrics"]["NDCG@10"]["mean"])
    assert result["sample"]["users"] == 24 and "genre-heuristic" in result["verdict"]
    assert "no verdict on the LLM" in result["verdict"]
    assert result["latency"]["users"] == 5 and result["latency"]["p95_ms"] > 0
    assert result["faithfulness"]["users"] == 3
    assert 0 <= result["faithfulness"]["fidelity_plus"] <= 1
    smooth = result["faithfulness"]
    assert smooth["smooth_users_compared"] == (smooth["smooth_users_faster"]
                                               + smooth["smooth_users_slower"]
                                               + smooth["smooth_users_tied"])
    # Smooth ranks compare every user with an item of 2+ paths, the exact ranks fewer.
    assert smooth["users_compared"] <= smooth["smooth_users_compared"] <= 3
    assert set(VARIANTS) >= {r["name"] for r in result["rows"][1:]}
    # The candidate signal, per role; when LLMRG stays at the base, the verdict says why.
    assert [s["role"] for s in result["candidate_signal"]] == ["train", "valid", "test"]
    test_signal = result["candidate_signal"][2]
    assert test_signal["points"] == 24
    fit = result["rows"][2]["fit"]
    assert fit["selection"] == "trained" and fit["best_epoch"] >= 1
    base_valid = metrics_from_ranks(workspace.base_ranks("valid"))["NDCG@10"]
    assert fit["start_valid_ndcg10"] == pytest.approx(base_valid)
    kept_base = fit["best_epoch"] == 0
    assert ("Validation kept the starting point" in result["verdict"]) == kept_base
    if kept_base:
        assert f"{test_signal['target_in_candidates']:.1%}" in result["verdict"]
