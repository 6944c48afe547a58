"""Unit tests of the rank-shift rows and chart (pure functions: no model, no Streamlit)."""

from __future__ import annotations

from models.explain_schema import Counterfactual, ItemRef, RankedItem, TopK

from app.components.effect_charts import rank_shift_figure, shift_rows


def _row(index: int, rank: int, other: int, base: int | None = None) -> RankedItem:
    return RankedItem(index=index, item_id=str(index), title=f"<b>item {index}</b>", rank=rank,
                      score=1.0 / rank, other_rank=other, rank_shift=0, base_rank=base)


def _top() -> TopK:
    # base: 1, 2; fused: 2, 3 (item 3 was 7th under the base model, item 1 is 4th fused)
    return TopK(base=[_row(1, 1, 4, 1), _row(2, 2, 1, 2)],
                fused=[_row(2, 1, 2, 2), _row(3, 2, 7, 7)])


def test_rows_cover_both_lists_in_fused_order() -> None:
    rows = shift_rows(_top())
    assert [(r.index, r.base_rank, r.fused_rank, r.after_rank) for r in rows] == [
        (2, 2, 1, None), (3, 7, 2, None), (1, 1, 4, None)]
    assert rows[1].shift() == 5


def test_an_item_entering_from_outside_both_lists_keeps_its_base_rank() -> None:
    entering = _row(9, 2, 15, base=40)   # after the removal: 2nd; before: 15th; base: 40th
    cf = Counterfactual(removed_chains=["c1"], removed_nodes=[], removed_edges=[],
                        top_k=[_row(2, 1, 1, 2), entering], entered=[
                            ItemRef(index=9, item_id="9", title="x")], left=[])
    rows = {r.index: r for r in shift_rows(_top(), cf)}
    assert (rows[9].base_rank, rows[9].fused_rank, rows[9].after_rank) == (40, 15, 2)
    assert rows[3].after_rank is None   # left the list


def test_chart_has_few_traces_and_escaped_titles() -> None:
    rows = shift_rows(_top())
    fig = rank_shift_figure(rows, 2, selected=3)
    points = fig.data[-1]
    assert list(points.customdata) == [2, 2, 3, 3, 1, 1]
    assert len(fig.data) <= 5
    assert not any("<b>" in t for t in points.text if t)
    assert all("&lt;b&gt;" in h for h in points.hovertext)
    # the selected item's points are drawn larger; items below the top-k sit on the ">k" row
    assert [s for s, i in zip(points.marker.size, points.customdata) if i == 3] == [13, 13]
    assert max(points.y) == 3
