"""Per-user outcomes of a fused model against its base: where the graph helped or hurt.

Error analysis reads one row per sampled user at the test point: the true
item's rank under the base and the fused model, plus what a reader filters on
(the target's genres, the history and window lengths, the graph's verification
pass rate). Ranks are 1-based over all items with no history masking, as the
``loo`` metrics use them.
"""

from __future__ import annotations

from typing import Any

from models.fusion.fit import FusionRun
from models.fusion.workspace import FusionWorkspace
from reasoning.graph_nodes import chain_records


def verification_pass_rate(chains: list[dict[str, Any]] | list[Any]) -> float | None:
    """Verified chains over scored chains (``None`` when no chain was scored)."""
    statuses = [c["status"] if isinstance(c, dict) else c.status for c in chains]
    scored = [s for s in statuses if s != "unverified"]
    return statuses.count("verified") / len(scored) if scored else None


def user_outcomes(workspace: FusionWorkspace, run: FusionRun) -> list[dict[str, Any]]:
    """One row per sampled user (test point): base and fused rank of the true item and context.

    ``outcome`` is ``won`` when the fused model ranks the true item higher,
    ``lost`` when lower, ``tie`` otherwise; ``rank_gain`` is base minus fused rank.
    """
    points = workspace.points
    index = points.indices("test")
    base = workspace.base_ranks("test")
    fused = workspace.ranks(run, "test")
    catalogue = workspace.dataset.catalogue
    rows = []
    for position, point_index in enumerate(index):
        point = points.points[point_index]
        user = point.user
        target = catalogue[int(point.target)]
        base_rank, fused_rank = int(base[position]) + 1, int(fused[position]) + 1
        chains = chain_records(user.graph)
        rows.append({
            "user": user.user_id,
            "target_item": target.item_id,
            "target": target.display_name,
            "target_genres": list(target.genres),
            "history_length": int(len(user.history)),
            "window_length": user.steps,
            "chains": len(chains),
            "verification_pass_rate": verification_pass_rate(chains),
            "base_rank": base_rank,
            "fused_rank": fused_rank,
            "rank_gain": base_rank - fused_rank,
            "outcome": "won" if fused_rank < base_rank else "lost" if fused_rank > base_rank
            else "tie",
        })
    return rows
