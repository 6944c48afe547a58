"""Per-user base-vs-fused outcomes on real ml-100k (genre stand-in graphs, tiny base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import Dataset
from models.fusion.error_analysis import Outcome, user_outcomes, verification_pass_rate
from models.metrics import metrics_from_ranks
from tests.models.fusion_setup import small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


def test_pass_rate_ignores_unverified_chains() -> None:
    chains = [{"status": "verified"}, {"status": "rejected"}, {"status": "unverified"},
              {"status": "verified"}]
    assert verification_pass_rate(chains) == pytest.approx(2 / 3)
    assert verification_pass_rate([{"status": "unverified"}]) is None
    assert verification_pass_rate([]) is None


def test_outcomes_agree_with_the_workspace_ranks(ml100k: Dataset, tmp_path: Path) -> None:
    workspace = small_workspace(ml100k, tmp_path, users=12, epochs=1)
    run = workspace.fit("llmrg")
    rows = user_outcomes(workspace, run)
    assert [r.user for r in rows] == [u.user_id for u in workspace.user_graphs]
    for row, base, fused in zip(rows, workspace.base_ranks("test"), workspace.ranks(run, "test")):
        assert (row.base_rank, row.fused_rank) == (int(base) + 1, int(fused) + 1)
        assert row.rank_gain == row.base_rank - row.fused_rank
        assert row.outcome == (Outcome.WON if row.rank_gain > 0 else
                               Outcome.LOST if row.rank_gain < 0 else Outcome.TIE)
        history = ml100k.history(row.user)
        assert ml100k.catalogue[int(history[-1])].item_id == row.target_item
        assert row.history_length == len(history) and 1 <= row.window_length <= 10
    # The rows are the test metrics' inputs: their mean reciprocal rank is the run's MRR@20 cut.
    ranks = [r.fused_rank - 1 for r in rows]
    assert metrics_from_ranks(ranks)["MRR@20"] == pytest.approx(run.metrics["test"]["MRR@20"])
