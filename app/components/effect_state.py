"""Widget-state helpers of the Recommendations-and-effect page (callbacks, keys, escaping).

Kept out of the page script so tests can call them: AppTest cannot click a
plotly chart, so the chart's selection handler is tested directly.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from app.components.effect_charts import selected_item

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md(text: Any) -> str:
    """Text shown literally inside ``st.markdown`` (links, images, HTML and colour tags off)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def restore(keys: dict[str, str]) -> None:
    """"Restore original": switch everything back on (a callback, so it runs before the widgets)."""
    for key in keys.values():
        st.session_state[key] = []


def select_from_chart(chart_key: str, item_key: str) -> None:
    """Rank-shift chart selection -> the explained item (the item selectbox's state)."""
    item = selected_item(st.session_state.get(chart_key))
    if item is not None:
        st.session_state[item_key] = item
