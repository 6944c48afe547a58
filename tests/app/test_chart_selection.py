"""The rank-shift chart's selection payload (moved here from the report's tests)."""

from __future__ import annotations

from app.components.effect_charts import selected_item


def test_chart_selection_payload_shapes() -> None:
    assert selected_item({"selection": {"points": [{"customdata": [17]}]}}) == 17
    assert selected_item({"selection": {"points": [{"customdata": 3}, {"customdata": 9}]}}) == 9
    assert selected_item({"selection": {"points": [{"x": 1}]}}) is None
