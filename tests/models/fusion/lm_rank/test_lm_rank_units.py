"""LM ranking's parts without an LLM: the reranking, λ chosen on validation only, the
build's resume after a backend failure (a failing fake backend: a failure path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Dataset
from models.fusion.fit import fit_fusion, rank_samples
from models.fusion.lm_rank import LMRankSpec
from models.fusion.lm_rank.model import (CANDIDATES, SCORED, SCORES, LMRankFusion, rerank,
                                         standardize, weight_grid)
from models.fusion.settings import FusionSettings
from models.fusion.train import FusionSample
from models.metrics import metrics_from_ranks
from reasoning.backend import BackendFailure, ContinuationScores, LLMBackend
from reasoning.lm_scores import LMScoreStore
from reasonrec.lm_scores import build_lm_scores, score_key
from tests.models.fusion_setup import small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


def test_rerank_lifts_the_candidates_in_the_mix_order_and_keeps_the_rest() -> None:
    base = torch.tensor([[-np.inf, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5]])
    candidates = torch.tensor([[1, 2, 3]])
    lm = torch.tensor([[-3.0, -2.0, -1.0]])   # the LM likes item 3 best
    only_base = rerank(base, candidates, lm, 0.0)[0]
    only_lm = rerank(base, candidates, lm, 1.0)[0]
    assert torch.argsort(only_base[1:], descending=True).tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.argsort(only_lm[1:], descending=True).tolist() == [2, 1, 0, 3, 4, 5]
    assert torch.equal(only_lm[4:], base[0, 4:])            # outside the top-N: unchanged
    assert only_lm[[1, 2, 3]].min() > base[0, 1:].max()     # candidates above everything
    # a row without LM scores keeps the base scores exactly
    assert torch.equal(rerank(base, candidates, lm, 1.0, torch.tensor([False]))[0], base[0])
    assert torch.allclose(standardize(torch.tensor([[1.0, 2.0, 3.0]])),
                          torch.tensor([[-1.2247, 0.0, 1.2247]]), atol=1e-4)
    assert torch.equal(standardize(torch.tensor([[2.0, 2.0]])), torch.zeros(1, 2))


def test_weight_grid_and_options() -> None:
    assert weight_grid(0.25) == (0.0, 0.25, 0.5, 0.75, 1.0)
    with pytest.raises(ValueError, match="divide 1"):
        weight_grid(0.3)
    spec = LMRankSpec()
    assert spec.parse_options({"mode": "only"}).weights() == (1.0,)
    assert spec.parse_options({}).weights()[0] == 0.0
    with pytest.raises(ValueError, match="unknown lm-rank option"):
        spec.parse_options({"lambda": 0.3})
    with pytest.raises(ValueError, match="lm-rank options"):
        spec.parse_options({"mode": "sometimes"})


def _samples(n_items: int, rng: np.random.Generator, lm_helps: bool, count: int
             ) -> list[FusionSample]:
    """Points whose base top-5 holds the target at base position 4; the LM ranks it first
    (``lm_helps``) or last."""
    out = []
    for _ in range(count):
        order = rng.permutation(np.arange(1, n_items + 1))[:5]
        e_base = torch.zeros(n_items + 1)
        e_base[torch.as_tensor(order)] = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
        target = int(order[3])
        lm = [-3.0, -3.0, -3.0, -1.0 if lm_helps else -5.0, -3.0]
        out.append(FusionSample(e_base=e_base, target=target,
                                inputs={CANDIDATES: order.tolist(), SCORES: lm, SCORED: True}))
    return out


def test_lambda_is_chosen_on_validation_only() -> None:
    n_items = 30
    rng = np.random.default_rng(0)
    valid = _samples(n_items, rng, lm_helps=True, count=40)
    test = _samples(n_items, rng, lm_helps=False, count=40)
    # an identity item table: each point's base scores are its E_base
    model = LMRankFusion(n_items, n_items + 1, weights=weight_grid(0.25),
                         item_init=torch.eye(n_items + 1))
    settings = FusionSettings(users=1, patience=1)
    # the training points are unscored and unused: λ is chosen, not learned
    report = fit_fusion(model, valid[:1], valid, settings)
    expected = []
    for weight in model.weights:
        model.weight.fill_(weight)
        expected.append(metrics_from_ranks(rank_samples(model, valid))["NDCG@10"])
    best = int(np.argmax(expected))   # argmax keeps the first of equals, as the fit does
    assert report.best_epoch == best and best > 0
    assert len(report.epochs) == len(model.weights) - 1   # every choice scored (no patience)
    model.weight.fill_(model.weights[best])
    chosen_test = metrics_from_ranks(rank_samples(model, test))["NDCG@10"]
    model.weight.fill_(0.0)
    assert chosen_test < metrics_from_ranks(rank_samples(model, test))["NDCG@10"]


class FailingAfter(LLMBackend):
    """Scores deterministically, then fails: the build must keep what it finished."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    @property
    def model_identity(self) -> str:
        return "sha256:fake"

    def complete(self, request, on_token=None):   # noqa: ANN001, ANN201
        raise AssertionError("LM ranking never generates")

    def info(self) -> dict:
        return {}

    def score_continuations(self, prefix: str, continuations: list[str]) -> ContinuationScores:
        if self.left == 0:
            raise BackendFailure("the server went away")
        self.left -= 1
        return ContinuationScores([-float(len(c)) for c in continuations],
                                  [max(1, len(c) // 4) for c in continuations], 10, 0.01)


def test_a_failed_build_keeps_finished_points_and_a_rerun_continues(
        ml100k: Dataset, tmp_path: Path) -> None:
    workspace = small_workspace(ml100k, tmp_path / "runs", users=3, epochs=1)
    store = tmp_path / "lm.sqlite"
    with pytest.raises(BackendFailure):
        build_lm_scores(workspace, FailingAfter(4), store, top_n=5)
    key = score_key(ml100k.name, workspace.base, "sha256:fake", top_n=5)
    db = LMScoreStore(store)
    try:
        assert len(db.points(key)) == 4
        other = score_key(ml100k.name, workspace.base, "sha256:fake", top_n=6)
        assert db.points(other) == []            # another N is another key
    finally:
        db.close()
    summary = build_lm_scores(workspace, FailingAfter(10), store, top_n=5)
    assert (summary.points_scored, summary.points_skipped) == (2, 4)


def test_the_bench_rows_carry_cost_popularity_and_pairs(ml100k: Dataset, tmp_path: Path) -> None:
    from models.bench_fusion import bench_fusion
    from models.bench_fusion_extras import POPULAR_SHARE, popular_items

    workspace = small_workspace(ml100k, tmp_path / "runs", users=12, epochs=1)
    result = bench_fusion(workspace, variants=["seqgraph", "lm-only"], min_users=1)
    rows = {r["name"]: r for r in result["rows"]}
    for name in ("base", "seqgraph"):   # no LLM
        cost = rows[name]["cost"]
        assert cost["tokens_per_user"] == 0 == cost["llm_calls_per_user"]
    assert rows["lm-only"]["cost"]["training_seconds"] >= 0
    assert "vs_control" in rows["lm-only"] and "vs_control" not in rows["seqgraph"]
    # the popular set is the top 5% by training interactions, the base's share by hand
    popular = popular_items(workspace)
    assert len(popular) == round(POPULAR_SHARE * ml100k.n_items)
    counts = np.bincount(np.concatenate(workspace.split.train), minlength=ml100k.n_items + 1)
    assert min(counts[i] for i in popular) >= np.sort(counts[1:])[::-1][len(popular) - 1]
    test = workspace.points.indices("test")
    scores = workspace.points.e_base[test] @ workspace.item_table.T
    scores[:, 0] = -torch.inf
    top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :10]
    assert rows["base"]["popular_top10_share"] == pytest.approx(
        np.mean([int(i) in popular for i in top.flatten()]))
    assert "no candidate list" in result["popularity_bias"]["position_bias"]
