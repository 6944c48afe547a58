"""Per-user outcomes of a fused model against its base: where the graph helped or hurt.

Error analysis reads one row per sampled user at the test point: the true
item's rank under the base and the fused model, plus what a reader filters on
(the target's genres, the history and window lengths, the graph's verification
pass rate). Ranks are 1-based over all items with no history masking, as the
``loo`` metrics use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from models.fusion.fit import FusionRun
from models.fusion.workspace import FusionWorkspace
from reasoning.graph import ChainStatus
from reasoning.graph_nodes import chain_records


class Outcome(StrEnum):
    """Whether the fused model ranks the held-out film above its base model."""

    WON = "won"
    LOST = "lost"
    TIE = "tie"


@dataclass(frozen=True)
class UserOutcome:
    """One sampled user's test point under the base and the fused model.

    Attributes:
        user: the user's id.
        target_item / target: the held-out film's id and title.
        target_genres: its genres.
        history_length: films in the user's whole history.
        window_length: films in the reasoning window.
        chains: reasoning chains in the user's graph.
        verification_pass_rate: verified over scored chains (None: none scored).
        base_rank / fused_rank: the film's 1-based rank among all films.
        rank_gain: base rank minus fused rank (positive: the fused model ranks it higher).
        outcome: won, lost or tie.
    """

    user: str
    target_item: str
    target: str
    target_genres: tuple[str, ...]
    history_length: int
    window_length: int
    chains: int
    verification_pass_rate: float | None
    base_rank: int
    fused_rank: int
    rank_gain: int
    outcome: Outcome


def verification_pass_rate(chains: Sequence[Any]) -> float | None:
    """Verified chains over scored chains (``None`` when no chain was scored); ``chains``
    are chain records (or their JSON dicts, as the shipped bundle stores them)."""
    statuses = [ChainStatus(c["status"] if isinstance(c, dict) else c.status) for c in chains]
    scored = [s for s in statuses if s != ChainStatus.UNVERIFIED]
    return statuses.count(ChainStatus.VERIFIED) / len(scored) if scored else None


def user_outcomes(workspace: FusionWorkspace, run: FusionRun) -> list[UserOutcome]:
    """One row per sampled user (test point): base and fused rank of the true item and context."""
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
        outcome = (Outcome.WON if fused_rank < base_rank else
                   Outcome.LOST if fused_rank > base_rank else Outcome.TIE)
        rows.append(UserOutcome(user.user_id, target.item_id, target.display_name,
                                tuple(target.genres), int(len(user.history)), user.steps,
                                len(chains), verification_pass_rate(chains), base_rank,
                                fused_rank, base_rank - fused_rank, outcome))
    return rows
