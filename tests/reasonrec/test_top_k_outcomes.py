"""Top-10 outcomes of the true next item (#18): what a user of the list sees change."""

from __future__ import annotations

import pytest

from reasonrec.top_k_outcomes import ORDER, TopKOutcome, label, top_k_outcome


@pytest.mark.parametrize(("base", "fused", "expected"), [
    (11, 10, TopKOutcome.ENTERED), (500, 1, TopKOutcome.ENTERED),
    (10, 11, TopKOutcome.LEFT), (1, 900, TopKOutcome.LEFT),
    (3, 1, TopKOutcome.MOVED), (1, 10, TopKOutcome.MOVED),
    (4, 4, TopKOutcome.UNCHANGED), (1069, 798, TopKOutcome.UNCHANGED),   # a move nobody sees
    (11, 11, TopKOutcome.UNCHANGED),
])
def test_outcome_of_a_rank_pair(base: int, fused: int, expected: TopKOutcome) -> None:
    assert top_k_outcome(base, fused) == expected


def test_entered_and_left_come_first_and_k_is_in_the_words() -> None:
    assert ORDER[:2] == (TopKOutcome.ENTERED, TopKOutcome.LEFT)
    assert top_k_outcome(6, 5, k=5) == TopKOutcome.ENTERED
    assert label(TopKOutcome.LEFT, 5) == "left the top 5"


def test_bad_ranks_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        top_k_outcome(0, 3)
