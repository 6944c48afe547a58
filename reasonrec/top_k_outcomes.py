"""What fusion did to the true next item, as a user of the top-k list sees it (#18).

A rank move from 1069 to 798 changes nothing on screen; entering or leaving the
top-k does. The Evaluation page groups users by these outcomes, the visible ones
first.
"""

from __future__ import annotations

from enum import StrEnum


class TopKOutcome(StrEnum):
    """The true item's fate between the base and the fused top-k (values are the labels)."""

    ENTERED = "entered the top 10"
    LEFT = "left the top 10"
    MOVED = "moved inside the top 10"
    UNCHANGED = "unchanged"            # same rank, or outside the top-k both times


#: Display order: what a user of the list sees change first.
ORDER = (TopKOutcome.ENTERED, TopKOutcome.LEFT, TopKOutcome.MOVED, TopKOutcome.UNCHANGED)


def top_k_outcome(base_rank: int, fused_rank: int, k: int = 10) -> TopKOutcome:
    """The outcome of a true item ranked ``base_rank`` by the base model and ``fused_rank``
    with reasoning (1-based ranks). Moves outside the top-k count as unchanged.

    Raises:
        ValueError: a rank below 1, or ``k`` below 1.
    """
    if base_rank < 1 or fused_rank < 1 or k < 1:
        raise ValueError(f"ranks and k must be at least 1, got {base_rank}, {fused_rank}, {k}")
    base_in, fused_in = base_rank <= k, fused_rank <= k
    if fused_in and not base_in:
        return TopKOutcome.ENTERED
    if base_in and not fused_in:
        return TopKOutcome.LEFT
    if base_in and fused_in and base_rank != fused_rank:
        return TopKOutcome.MOVED
    return TopKOutcome.UNCHANGED


def label(outcome: TopKOutcome, k: int) -> str:
    """The outcome in words for a top-``k`` list."""
    return outcome.value.replace("top 10", f"top {k}")
