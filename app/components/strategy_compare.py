"""Recommendations: the base model and two fused strategies side by side (#19).

The strategies are the registry's variants that have a trained run for the configured base
model and user sample (``app.state.get_strategies``, ``reasonrec.fusion.strategy_runs``);
nothing here names one. A strategy without a run is listed with the plain reason. The lists
come from ``reasonrec.fusion.strategy_top_k`` (scores only, milliseconds), and the section
is a fragment: picking a strategy reruns it alone, not the page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.components.effect_state import md
from app.components.explanation_view import ordinal
from app.components.plain_names import model_words, strategy_words, unavailable_words
from app.keys import STRATEGY_A, STRATEGY_B
from app.state import StrategyHandles, init_widget

NEXT_MARK = " ◀ watched next"


def place_for(explainer: Any, dataset: Any, user: str, built: Any) -> Any:
    """The user's graph placed with ``explainer``'s intents: the one built on the Reasoning
    page when there is one, else the graph source's (LookupError: none)."""
    if built is None:
        return explainer.user_graph(user)
    from reasonrec.explain_api import place_graph

    return place_graph(dataset, user, built, explainer.intents)


def list_rows(rows: list[Any], target: int, other: str | None) -> list[dict[str, Any]]:
    """A top-k as table rows: rank, title (the film watched next marked) and, for a strategy,
    the base model's rank of each film."""
    return [{"rank": r.rank, "title": r.title + (NEXT_MARK if r.index == target else ""),
             **({other: r.base_rank} if other else {})} for r in rows]


def _keep_choice(key: str, names: list[str], default: str | None) -> None:
    """Seed a picker, and reset it when its strategy is no longer trained."""
    init_widget(key, default)
    if st.session_state.get(key) not in names:
        st.session_state[key] = default


@st.fragment
def strategy_comparison(handles: StrategyHandles, dataset: Any, user: str, built: Any,
                        step: int, films: int) -> None:
    """Two strategy pickers and three lists: base, strategy A, strategy B (``built``: the
    Reasoning page's graph for ``user``, or None; ``step``: the window step of ``films``)."""
    with st.container(key="strategy-compare"):
        _comparison(handles, dataset, user, built, step, films)


def _comparison(handles: StrategyHandles, dataset: Any, user: str, built: Any, step: int,
                films: int) -> None:
    words = {r.name: strategy_words(r.name, r.description) for r in handles.runs}
    names = [r.name for r in handles.available()]
    st.subheader("Compare strategies")
    st.caption(f"The base model and two ways of adding the LLM's reasoning to it, after "
               f"{films} films. Strategies listed here have a model trained on this machine "
               "for the same users.")
    missing = unavailable_words(handles.runs)
    if missing:
        st.caption(md(missing))
    if not names:
        st.info("No strategy has a trained model yet: train one with `reasonrec fusion fit`.")
        return
    configured = handles.fusion.run.variant
    first = configured if configured in names else names[0]
    _keep_choice(STRATEGY_A, names, first)
    _keep_choice(STRATEGY_B, names, next((n for n in names if n != first), first))
    pick_a, pick_b = st.columns(2)
    chosen = [pick_a.selectbox("Strategy A", names, key=STRATEGY_A, format_func=words.get),
              pick_b.selectbox("Strategy B", names, key=STRATEGY_B, format_func=words.get)]
    if len(names) == 1:
        st.caption("Only one strategy is trained here, so A and B are the same.")

    from reasonrec.fusion import strategy_top_k

    results: dict[str, Any] = {}
    for name in dict.fromkeys(chosen):
        try:
            explainer = handles.explainer(name)
            graph = place_for(explainer, dataset, user, built)
            with handles.lock:
                results[name] = strategy_top_k(explainer, graph, step)
        except Exception as exc:   # one strategy failing leaves the others on the page
            results[name] = exc
    base_col, *strategy_cols = st.columns(3)
    k = handles.fusion.explainer.k
    shown = next((r for r in results.values() if not isinstance(r, Exception)), None)
    with base_col, st.container(key="compare-base"):
        st.markdown(f"**Base: {md(model_words(handles.fusion.workspace.base.name))}**")
        if shown is not None:
            st.table(pd.DataFrame(list_rows(shown.base, shown.target_index, None)))
            st.caption(f"The film watched next, {md(shown.target_title)}, ranks "
                       f"{ordinal(shown.target_base_rank)}.")
    for letter, name, column in zip("AB", chosen, strategy_cols):
        with column, st.container(key=f"compare-{letter.lower()}"):
            st.markdown(f"**{letter}: {md(words[name])}**")
            result = results[name]
            if isinstance(result, Exception):
                st.warning(f"This strategy could not rank user {md(user)}'s films: "
                           f"{md(result)}.")
                continue
            st.table(pd.DataFrame(list_rows(result.fused, result.target_index,
                                            "base model's rank")))
            moved = result.target_base_rank - result.target_rank
            change = (f"{moved} places higher than" if moved > 0 else
                      f"{-moved} places lower than" if moved < 0 else "the same as")
            st.caption(f"The film watched next ranks {ordinal(result.target_rank)}, {change} "
                       f"with the base model (top {k} shown).")
