"""How much the reasoning graphs could tell a fused model: do their candidates hold the target?

A fused model can only gain from the divergent candidates where they hold the
item the user watched next, and only where the base model does not already rank
that item high. The fusion bench reports both, per role, so that a fused model
that stays at the base model comes with the plain reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.fusion.samples import PointSet, Role
from reasoning.graph import prefix_graph
from reasoning.graph_nodes import candidates


@dataclass(frozen=True)
class CandidateSignal:
    """The candidates against the target, over one role's points.

    Attributes:
        role: train, valid or test.
        points: how many points.
        mean_candidates: candidate items in a point's prefix graph, on average.
        target_in_candidates: share of points whose target is a candidate.
        base_top_same_size: share whose target the base model ranks within as
            many places as the point has candidates (the same budget).
        only_in_candidates: share whose target is a candidate but outside that
            base top (what the graph adds over the base).
    """

    role: Role
    points: int
    mean_candidates: float
    target_in_candidates: float
    base_top_same_size: float
    only_in_candidates: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def candidate_signal(points: PointSet, base_ranks: np.ndarray, role: Role) -> CandidateSignal:
    """:class:`CandidateSignal` of ``role``'s points.

    Args:
        points: the sample's points (their users' graphs).
        base_ranks: the base model's 0-based target ranks at ``role``'s points,
            in ``points.indices(role)`` order.
        role: which points.
    """
    chosen = [points.points[i] for i in points.indices(role)]
    if len(chosen) != len(base_ranks):
        raise ValueError(f"{len(base_ranks)} base ranks for {len(chosen)} {role} points")
    sizes, hits, base_hits, only = [], 0, 0, 0
    for point, rank in zip(chosen, base_ranks):
        found = {c.item_index for c in candidates(prefix_graph(point.user.graph, point.step))}
        sizes.append(len(found))
        in_graph = point.target in found
        in_base = int(rank) < len(found)
        hits += in_graph
        base_hits += in_base
        only += in_graph and not in_base
    n = max(len(chosen), 1)
    return CandidateSignal(role, len(chosen), float(np.mean(sizes)) if sizes else 0.0,
                           hits / n, base_hits / n, only / n)


def signal_sentence(signals: Sequence[CandidateSignal]) -> str:
    """One plain sentence on the test points' candidates (empty without test points)."""
    test = next((s for s in signals if s.role == "test"), None)
    if test is None or not test.points:
        return ""
    return (f"The graphs' candidates (about {test.mean_candidates:.0f} per user) hold the "
            f"item watched next for {test.target_in_candidates:.1%} of test points; the base "
            f"model's top {test.mean_candidates:.0f} holds it for "
            f"{test.base_top_same_size:.1%}, and only {test.only_in_candidates:.1%} are "
            f"candidates the base ranks lower.")
