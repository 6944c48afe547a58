"""What a measured effect says: none, for the item, or against it, and how strongly (#18).

A removal's effect on an item (:class:`models.explain_schema.Effect`) is read
the same way everywhere: the path order, the deletion curve's explanation
order, fidelity's supporting paths, the flags and the sentence.

The order is by what the user sees, the rank: first the exact rank change,
then the smooth rank change (:func:`models.metrics.soft_rank`). The item's
score alone is shift-invariant noise to the ranking: a removal can lower it
and still lift the item, when its competitors drop more. The smooth rank
counts that. (Chosen on earlier window steps of the sample, never the step
the explanations bench reports: the explanation order beat random orders on
the deletion curve for 83% and 96% of compared users there, against 66% and
85% when ties in rank were broken by the score.)
"""

from __future__ import annotations

from models.explain_schema import Effect

#: Score changes below this are float noise, not an effect.
EFFECT_EPS = 1e-6


def has_no_effect(effect: Effect) -> bool:
    """The removal changes neither the item's rank nor (beyond float noise) its score."""
    return effect.delta_rank == 0 and abs(effect.delta_score) < EFFECT_EPS


def pushed_down(effect: Effect) -> float:
    """How far the removal pushes the item down at an unchanged rank: its smooth rank's
    rise (for documents saved before smooth ranks, its score's fall)."""
    return effect.delta_soft_rank if effect.delta_soft_rank is not None else -effect.delta_score


def strength(effect: Effect) -> tuple[int, float]:
    """Sort key, strongest support first: the exact rank change, then the smooth one."""
    return (-effect.delta_rank, -pushed_down(effect))


def supports(effect: Effect) -> bool:
    """Removing the path pushes the item down (rank first, then smooth rank)."""
    if has_no_effect(effect):
        return False
    return effect.delta_rank > 0 or (effect.delta_rank == 0 and pushed_down(effect) > 0)


def works_against(effect: Effect) -> bool:
    """Removing the path lifts the item (rank first, then smooth rank)."""
    if has_no_effect(effect):
        return False
    return effect.delta_rank < 0 or (effect.delta_rank == 0 and pushed_down(effect) < 0)
