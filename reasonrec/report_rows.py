"""Rank rows shared by the app's charts and the offline report (no drawing here).

Both the Recommendations page's plotly chart (``app.components.effect_charts``)
and the report's SVG (``reasonrec.report_svg``) draw the same rows, so they
live below the app. Ranks beyond the top-k are ``None`` when the explainer did
not report them; charts draw those on one "below top-k" row.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.explain_schema import Counterfactual, RankedItem, TopK

UP, DOWN, SAME = "#2e7d32", "#c62828", "#757575"


@dataclass(frozen=True)
class ShiftRow:
    """One item's ranks: base, fused and (with a counterfactual) fused after the removal.

    A rank is ``None`` when the item is outside that list and the explainer did
    not report where it went (it is below the top-k); ranks below the top-k are
    drawn on the chart's ">k" row and named in its hover text.
    """

    index: int
    item_id: str
    title: str
    base_rank: int | None
    fused_rank: int | None
    after_rank: int | None = None

    def shift(self) -> int | None:
        """Base rank minus fused rank (positive: fusion moved it up), when both are known."""
        if self.base_rank is None or self.fused_rank is None:
            return None
        return self.base_rank - self.fused_rank


def shift_rows(top_k: TopK, counterfactual: Counterfactual | None = None) -> list[ShiftRow]:
    """Every item of either top-k list (and of the counterfactual list), in fused order."""
    base: dict[int, int] = {r.index: r.rank for r in top_k.base}
    fused: dict[int, int] = {r.index: r.rank for r in top_k.fused}
    refs: dict[int, RankedItem] = {}
    for row in top_k.base:              # other_rank = this item's fused rank
        fused.setdefault(row.index, row.other_rank)
        refs[row.index] = row
    for row in top_k.fused:             # other_rank = this item's base rank
        base.setdefault(row.index, row.other_rank)
        refs[row.index] = row
    after: dict[int, int] = {}
    if counterfactual is not None:
        for row in counterfactual.top_k:  # other_rank = the rank before the removal
            after[row.index] = row.rank
            fused.setdefault(row.index, row.other_rank)
            if row.base_rank is not None:   # an item entering from outside both lists
                base.setdefault(row.index, row.base_rank)
            refs.setdefault(row.index, row)
    order = sorted(refs, key=lambda i: (fused.get(i, 10**9), base.get(i, 10**9), i))
    return [ShiftRow(i, refs[i].item_id, refs[i].title, base.get(i), fused.get(i), after.get(i))
            for i in order]


def score_change(delta: float) -> str:
    """A signed score change to 3 decimals, or to 2 significant digits when it is smaller
    than that shows (a real effect never reads as "-0.000")."""
    if delta == 0 or abs(delta) >= 0.0005:
        return f"{delta:+.3f}"
    return f"{delta:+.2g}" if abs(delta) >= 1e-4 else f"{delta:+.1e}"
