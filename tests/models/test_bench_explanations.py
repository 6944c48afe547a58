"""``models.bench_explanations``' reliance block: what removing all reasoning does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.bench_explanations import reliance
from models.explain_schema import DeletionCurve, Effect, Fidelity, ItemExplanation


def _item(delta_rank: int, soft: float | None) -> ItemExplanation:
    without = Effect(delta_score=-0.1, delta_rank=delta_rank, rank_after=3 + delta_rank,
                     in_top_k_after=True, delta_soft_rank=soft)
    return ItemExplanation(
        index=1, item_id="i1", title="t", rank=3, score=0.0, paths=[],
        deletion=DeletionCurve(start_rank=3, explanation_ranks=[], random_ranks=[],
                               random_orders=0, area_explanation=0, area_random=0, faster=None),
        fidelity=Fidelity(explanation_paths=0, in_top_k=True, plus=0.0, minus=0.0),
        without_reasoning=without)


def test_reliance_counts_rank_moves_and_the_median_smooth_change() -> None:
    users = [SimpleNamespace(items=[_item(0, 0.01), _item(2, 1.5)]),
             SimpleNamespace(items=[_item(-1, -0.4), _item(0, None)])]
    block = reliance(users)
    assert block["items"] == 4
    assert block["share_rank_moves"] == pytest.approx(0.5)
    assert block["mean_abs_rank_change"] == pytest.approx(0.75)
    assert block["median_abs_smooth_rank_change"] == pytest.approx(0.4)   # of 0.01, 1.5, 0.4
    assert reliance([]) == {"items": 0, "share_rank_moves": None, "mean_abs_rank_change": None,
                            "median_abs_smooth_rank_change": None}
