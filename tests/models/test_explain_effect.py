"""How a measured effect is read: none, for, against, and the strongest-first order."""

from __future__ import annotations

from models.explain_effect import has_no_effect, strength, supports, works_against
from models.explain_schema import Effect


def _effect(delta_rank: int, delta_score: float, soft: float | None) -> Effect:
    return Effect(delta_score=delta_score, delta_rank=delta_rank, rank_after=3 + delta_rank,
                  in_top_k_after=True, delta_soft_rank=soft)


def test_at_an_unchanged_rank_the_smooth_rank_decides_not_the_score():
    # The item's score rose, but its competitors rose more: the path supports it.
    lifted_but_caught_up = _effect(0, 0.2, 0.3)
    assert supports(lifted_but_caught_up) and not works_against(lifted_but_caught_up)
    fell_but_pulled_ahead = _effect(0, -0.2, -0.1)
    assert works_against(fell_but_pulled_ahead) and not supports(fell_but_pulled_ahead)


def test_documents_without_a_smooth_rank_fall_back_to_the_score():
    assert supports(_effect(0, -0.2, None)) and works_against(_effect(0, 0.2, None))


def test_rank_changes_come_first_and_no_effect_is_neither():
    ordered = sorted([_effect(0, -1.0, 2.0), _effect(1, 0.0, 0.1), _effect(0, -0.1, 0.5),
                      _effect(-1, 0.3, -0.4)], key=strength)
    assert [(e.delta_rank, e.delta_soft_rank) for e in ordered] == [(1, 0.1), (0, 2.0), (0, 0.5),
                                                                     (-1, -0.4)]
    nothing = _effect(0, 0.0, 1e-9)
    assert has_no_effect(nothing) and not supports(nothing) and not works_against(nothing)
