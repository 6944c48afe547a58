"""The "What if?" section of the Recommendations page: counterfactual switches, the base and
fused top-k lists, and the rank-shift chart.

A Streamlit fragment, so a switch reruns only this section (the toggle-latency
bar). Titles and labels are untrusted: they reach the page as table cells,
widget labels, plotly text and escaped markdown only.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from app import keys
from app.components.effect_charts import ranked_table, rank_shift_figure, shift_rows
from app.components.effect_state import md, restore, select_from_chart
from app.components.plain_names import model_words
from app.components.switch_labels import chain_labels, node_labels, window_items
from app.report import CounterfactualState
from app.state import FusionHandle, init_widget
from reasonrec.explain_api import Counterfactual


def static_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A small static table (text in the page, so presenters and browser tests can read it)."""
    return pd.DataFrame(rows)


# A fragment: a switch or "Restore original" reruns only the switches, the lists
# and the chart, not the pickers above nor the explanation card below (whose plotly
# charts would be redrawn for nothing): the toggle-latency bar.
@st.fragment
def counterfactual_section(handle: FusionHandle, user: str, step: int, cache: dict[str, Any],
                           live: dict[str, Any], item_key: str) -> None:
    """Counterfactual switches, both top-k lists and the rank-shift chart."""
    from reasonrec.explain_api import reasoning_elements

    explainer, k = handle.explainer, handle.explainer.k
    point, top = cache["point"], cache["top"]
    prefix = point.prefix
    chains, nodes = reasoning_elements(prefix)
    switches = keys.effect_off(user, step)
    for key in switches.values():
        init_widget(key, [])
    with st.container(border=True, key="effect-switches"):
        st.markdown("**What if?** Switch parts of the reasoning off and see the fused list "
                    "change.")
        c1, c2, c3 = st.columns(3)
        chain_names = chain_labels(prefix, chains)
        off_chains = c1.multiselect("Chains off", chains, key=switches["chains"],
                                    format_func=lambda c: chain_names.get(c, c))
        node_names = node_labels(prefix, nodes, chains)
        off_nodes = c2.multiselect("Interests / suggested films off", nodes, key=switches["nodes"],
                                   format_func=lambda n: node_names.get(n, n))
        items = window_items(prefix, point.user.offset)
        off_items = c3.multiselect("Watched films off", list(items), key=switches["items"],
                                   format_func=lambda i: items.get(i, i))
        st.button("Restore original", key=keys.EFFECT_RESTORE, on_click=restore,
                  args=(switches,), disabled=not (off_chains or off_nodes or off_items))
    state = CounterfactualState(list(off_chains), list(off_nodes), list(off_items))
    cf: Counterfactual | None = None
    if state.active:
        try:
            started = time.perf_counter()
            with handle.lock:
                removal = explainer.removal(point, chains=state.chains, nodes=state.nodes,
                                            items=state.items)
                cf = explainer.counterfactual(point, removal)
            state.result = cf
            seconds = time.perf_counter() - started
        except (KeyError, ValueError) as exc:
            st.error(f"Could not switch that off: {md(exc)}. Press Restore original.")
        else:
            entered = ", ".join(md(i.title) for i in cf.entered) or "none"
            left = ", ".join(md(i.title) for i in cf.left) or "none"
            box = st.warning if (cf.entered or cf.left) else st.info
            box(f"Fused top-{k} recomputed in {seconds * 1000:.0f} ms. "
                f"**Entered:** {entered}. **Left:** {left}.", icon=None)
    live["state"] = state
    live["rows"] = rows = shift_rows(top, cf)

    # ------------------------------------------------------- the lists and chart
    base_col, fused_col, chart_col = st.columns(3)
    with base_col, st.container(key="effect-base-list"):
        st.subheader(f"Base top-{k} ({md(model_words(handle.workspace.base.name))})")
        st.table(static_table(ranked_table(top.base, "fused rank")))
    with fused_col, st.container(key="effect-fused-list"):
        if cf is not None:
            st.subheader(f"Fused top-{k} (with reasoning), after the removal")
            st.table(static_table(ranked_table(cf.top_k, "rank before")))
        else:
            st.subheader(f"Fused top-{k} (with reasoning)")
            st.table(static_table(ranked_table(top.fused, "base rank")))
    chart_key = keys.effect_chart(user)
    with chart_col, st.container(key="effect-rank-chart"):
        st.plotly_chart(rank_shift_figure(rows, k, selected=st.session_state.get(item_key),
                                          counterfactual=cf is not None),
                        key=chart_key, on_select=lambda: select_from_chart(chart_key, item_key),
                        selection_mode="points")
        if cf is not None:
            st.caption("The explanation below is measured at the original graph "
                       "(nothing switched off).")
    # An item picked in the chart during a fragment-only rerun: redraw the whole page,
    # so the card below explains it.
    if not live.get("full_run") and st.session_state.get(item_key) != live.get("card_item"):
        st.rerun()
