"""Recommendations and effect: base vs fused top-k, rank shifts, explanations, counterfactuals.

A view only: every number comes from the shared explainer (``app.state.get_fusion``),
called under the handle's lock because its torch modules are shared by every
browser session; the "What if?" switches live in app/components/counterfactual_view.py.
The user's reasoning graph is the one the Reasoning page just built
(``app.keys.built_graph``) or the configured graph source's.

Titles, intents and the LLM's reasons are untrusted: they reach the page only
as table cells, widget option labels, plotly text with its HTML subset
neutralised, or markdown with every markdown character escaped (:func:`md`),
never as raw markdown or HTML.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from app import keys
from app.components.counterfactual_view import counterfactual_section
from app.components.effect_charts import branch_figure, branch_rows, deletion_figure, film_id_rows
from app.components.effect_state import md
from app.components.explanation_view import (path_id_rows, show_paths,
                                             show_summaries, show_true_item)
from app.components.pickers import clamp_note, point_picker, user_picker
from app.components.plain_names import model_words
from app.components.strategy_compare import strategy_comparison
from app.report import CounterfactualState, ReportInput, export_input, report_html, report_json
from app.state import FusionHandle, get_fusion, get_strategies, studio_or_stop
from reasonrec.explain_api import Explanation, ItemExplanation, TopK
from reasonrec.fusion import KEPT_BASE_NOTE, below_base_note, kept_base
from reasonrec.reasoning_api import CandidateNode, node_record



def show_base_only(studio: Any, user: str, model: str | None, k: int) -> None:
    """The base top-k alone (users without a graph, or no fused model)."""
    name = model or _fallback_model(studio)
    st.subheader(f"Base top-{k} ({md(model_words(name))})")
    try:
        result = studio.recommend(user, k, name)
    except Exception as exc:  # shown with what to do next, never a traceback
        st.error(f"Could not recommend for user {md(user)} with the {model_words(name)}: "
                 f"{md(exc)}. Train it with `reasonrec train --model {name}`.")
        return
    if not result.top_k:
        st.info(f"User {md(user)} has seen every item: nothing new to recommend.")
        return
    st.dataframe(pd.DataFrame([{"rank": r.rank, "title": r.item.title, "year": r.item.year,
                                "score": r.score} for r in result.top_k]),
                 hide_index=True, key="effect_base_only")
    st.caption("Recommended after the user's whole history.")
    with st.expander("Details"):
        st.caption(f"Model: {md(name)}.")
        st.dataframe(pd.DataFrame([{"title": r.item.title, "film id": r.item.item_id}
                                   for r in result.top_k]),
                     hide_index=True, key="effect_base_only_ids")


def _fallback_model(studio: Any) -> str:
    name = studio.config.recommend.default_model
    try:
        if name == "pop" or studio.has_trained_run(name):
            return name
    except Exception:  # an unreadable run directory: popularity needs none
        pass
    return "pop"


def load_user_graph(handle: FusionHandle, dataset: Any, user: str) -> tuple[Any, str]:
    """The placed graph and where it came from (LookupError: the user has none)."""
    from reasonrec.explain_api import place_graph

    built = st.session_state.get(keys.built_graph(user))
    if built is not None:
        placed = place_graph(dataset, user, built, handle.explainer.intents)
        new = handle.explainer.intents.unknown(built)
        origin = "built on the Reasoning page"
        if new:   # say so: these nodes carry no text vector in the fused model
            origin += (f"; {len(new)} of its intent texts are new to the fused model (trained on "
                       "the sample's graphs) and enter it without their text embedding")
        return placed, origin
    return handle.explainer.user_graph(user), handle.explainer.provenance["graph_source"]


def scored_point(handle: FusionHandle, user_graph: Any, origin: str, step: int) -> dict[str, Any]:
    """This session's scored point (reused across reruns so toggles rescore only what changed)."""
    key = (user_graph.user_id, step, origin, id(user_graph.graph) if origin.startswith("built")
           else "source")
    cached = st.session_state.get(keys.EFFECT_CACHE)
    if cached is not None and cached["key"] == key and cached["handle"] is handle:
        return cached
    with handle.lock, st.spinner("Explaining the recommendations…"):
        point = handle.explainer.point(user_graph, step)
        explanation: Explanation = handle.explainer.explain(point)
    cached = {"key": key, "handle": handle, "point": point, "top": explanation.top_k,
              "explanation": explanation,
              "branches": {b.index: b for b in explanation.branch_effects},
              "items": {item.index: item for item in explanation.items}}
    st.session_state[keys.EFFECT_CACHE] = cached
    return cached


def follow_selected_node(user: str, prefix: Any, titles: dict[int, str], item_key: str) -> None:
    """A candidate item clicked on the Reasoning page opens its explanation here (once)."""
    selected = st.session_state.get(keys.SELECTED_NODE)
    if not isinstance(selected, dict) or str(selected.get("user")) != str(user):
        return
    node = selected.get("node")
    if node == st.session_state.get(keys.EFFECT_FOLLOWED) or node not in prefix:
        return
    st.session_state[keys.EFFECT_FOLLOWED] = node
    record = node_record(prefix, node)
    if isinstance(record, CandidateNode) and record.item_index in titles:
        st.session_state[item_key] = record.item_index


def explained(handle: FusionHandle, cache: dict[str, Any], item: int) -> ItemExplanation:
    """The item's explanation (fused top-k items come with the point; others on demand)."""
    if item not in cache["items"]:
        with handle.lock:
            cache["items"][item] = handle.explainer.explain_item(cache["point"], item)
    return cache["items"][item]


def explanation_card(handle: FusionHandle, cache: dict[str, Any], item: int) -> None:
    """One film: its sentence, ranks, and the paths that reach it with facts and effects."""
    from reasonrec.explain_api import reasoning_elements

    ie = explained(handle, cache, item)
    top: TopK = cache["top"]
    k = handle.explainer.k
    base_rank = next((r.rank for r in top.base if r.index == item),
                     next((r.other_rank for r in top.fused if r.index == item), None))
    chains = reasoning_elements(cache["point"].prefix)[0]
    with st.container(border=True, key="effect-card"):
        st.markdown(f"#### Why {md(ie.title)}")
        st.markdown(f"**{md(ie.summary)}**")
        a, b, c = st.columns(3)
        a.metric("Rank with reasoning", ie.rank)
        b.metric("Base rank", base_rank if base_rank is not None else f"below {k}")
        without = ie.without_reasoning
        c.metric("Rank without any reasoning", "n/a" if without is None else without.rank_after,
                 help="The film's rank when every reasoning chain and interest is removed.")
        show_paths(ie, chains, k)


def details_section(handle: FusionHandle, cache: dict[str, Any], origin: str,
                    item: int | None) -> None:
    """The page's one technical expander: sources, runs, branch effects, faithfulness."""
    explanation: Explanation = cache["explanation"]
    with st.expander("Details"):
        prov = explanation.provenance
        st.caption(f"Graph: {md(origin)}. Base run: {md(prov.base_run)}. Fused run "
                   f"({md(prov.fusion_variant)}): {md(prov.fusion_run)}. Window step "
                   f"{explanation.point.step} of {explanation.point.steps} "
                   f"({explanation.point.role} target).")
        top: TopK = cache["top"]
        st.caption(f"Films of both lists and their ids in the dataset (base model: "
                   f"{md(handle.workspace.base.name)}).")
        st.dataframe(pd.DataFrame(film_id_rows(top.base, top.fused)), hide_index=True,
                     key="effect_film_ids")
        if item is None:
            return
        ie = explained(handle, cache, item)
        st.markdown(f"**{md(ie.title)}**: fused score {ie.score:.4f}")
        branches = cache["branches"].get(item)
        if branches is not None:
            left, right = st.columns([3, 2])
            left.plotly_chart(branch_figure(branches), key=f"effect_branch_{item}")
            right.dataframe(pd.DataFrame(branch_rows(branches))[
                ["branch", "contribution", "delta_rank_if_zeroed"]], hide_index=True)
        if ie.paths:
            st.dataframe(pd.DataFrame(path_id_rows(ie)), hide_index=True,
                         key=f"effect_path_ids_{item}")
        d, f = ie.deletion, ie.fidelity
        st.markdown("**Faithfulness**")
        cols = st.columns(5)
        cols[0].metric("Deletion", f"{d.area_explanation:.1f}",
                       help="Sum of the item's ranks as its paths are removed in explanation "
                            "order: larger = the explanation pushes it down faster.")
        cols[1].metric("Random", f"{d.area_random:.1f}",
                       help=f"The same, averaged over {d.random_orders} seeded random orders.")
        cols[2].metric("Faster", "n/a" if d.faster is None else ("yes" if d.faster else "no"),
                       help="Explanation order beats random (needs at least 2 paths).")
        cols[3].metric("Fidelity+", f"{f.plus:.2f}",
                       help="1 if removing the explanation changes whether the item is in the "
                            "top-k.")
        cols[4].metric("Fidelity−", f"{f.minus:.2f}",
                       help="1 if keeping only the explanation (all other reasoning removed) "
                            "changes whether the item is in the top-k.")
        if d.explanation_ranks:
            st.plotly_chart(deletion_figure(d), key=f"effect_deletion_{item}")


def export_section(handle: FusionHandle, user_graph: Any, step: int, cache: dict[str, Any],
                   live: dict[str, Any]) -> None:
    """One-click downloads; the report is built when clicked (on Streamlit's download thread).

    The counterfactual state is read from ``live`` at that moment: the switches
    rerun only their fragment, so a state captured when this section was drawn
    could be stale.
    """
    point = cache["point"]

    def build() -> ReportInput:   # the page's scored point, not a rebuild (reasonrec.report)
        state: CounterfactualState = live.get("state") or CounterfactualState([], [], [])
        return export_input(handle, point, state)

    st.subheader("Export for stakeholders")
    st.caption("A self-contained HTML report (opens offline; no scripts) and the JSON behind it: "
               "the explanation of the fused top-k and the current counterfactual state.")
    left, right = st.columns(2)
    stem = f"reasonrec-user-{re.sub(r'[^A-Za-z0-9_-]', '_', user_graph.user_id)}-step-{step}"
    left.download_button("Download HTML report", data=lambda: report_html(build()),
                         file_name=f"{stem}.html", mime="text/html",
                         key=keys.EFFECT_REPORT_HTML,
                         on_click="ignore")
    right.download_button("Download JSON", data=lambda: report_json(build()),
                          file_name=f"{stem}.json", mime="application/json",
                          key=keys.EFFECT_REPORT_JSON, on_click="ignore")


def page() -> None:
    studio = studio_or_stop()
    st.header("Recommendations")
    dataset = studio.dataset
    user_col, step_col = st.columns([1, 3])
    user = user_picker(studio, keys.EFFECT_USER, where=user_col)

    try:
        handle = get_fusion()
    except Exception as exc:  # shown with what to do next, never a traceback
        st.error(f"Could not load the fused model: {md(exc)}. Check `[fusion]` in your config "
                 "(graphs, base_model), or run `reasonrec fusion fit` in a terminal for details.")
        show_base_only(studio, user, None, studio.config.recommend.k)
        return
    explainer = handle.explainer
    k = explainer.k
    try:
        user_graph, origin = load_user_graph(handle, dataset, user)
    except KeyError as exc:   # an unknown user, or a graph missing a field it needs
        st.error(f"Could not read user {md(user)}'s reasoning graph: {md(exc)}. Rebuild it on "
                 "the Reasoning page or with `reasonrec build-graphs`.")
        show_base_only(studio, user, handle.workspace.base.name, k)
        return
    except LookupError:
        st.info(f"User {md(user)} has no reasoning graph yet. Build one on the **Reasoning** "
                "page, or run `reasonrec build-graphs` in a terminal; the fused list and its "
                "explanations appear here once it exists.")
        show_base_only(studio, user, handle.workspace.base.name, k)
        return
    except Exception as exc:  # a corrupt or foreign graph: say what to do, no traceback
        st.error(f"User {md(user)}'s reasoning graph cannot be used: {md(exc)}. Rebuild it on "
                 "the Reasoning page.")
        show_base_only(studio, user, handle.workspace.base.name, k)
        return

    # One scale on every page: films watched. The graph covers the window before the
    # held-out film, so this page offers the points inside that window.
    offset = user_graph.offset
    low, high = offset + 1, offset + user_graph.steps
    chosen = point_picker(user, low, high, high, keys.effect_point(user), where=step_col,
                          help="The models see the films up to this point and rank the next "
                               "one. The last point predicts the film held out for the test.")
    note = clamp_note(chosen, low, high, "the reasoning graph")
    if note:
        st.caption(note)
    step = chosen.films - offset - 1
    try:
        cache = scored_point(handle, user_graph, origin, step)
    except Exception as exc:
        st.error(f"Could not score user {md(user)} after {chosen.films} films: {md(exc)}. "
                 "Pick another point or user.")
        return
    point = cache["point"]
    explanation: Explanation = cache["explanation"]
    below_base = below_base_note(handle.run)
    if kept_base(handle.run):   # a finding, not an error: the fused list is the base list
        st.info(KEPT_BASE_NOTE)
    elif below_base is not None:   # a finding too: what the reasoning does, not a win
        st.info(below_base)
    show_true_item(explanation.point, k)
    show_summaries(explanation.items)

    # Shared with the fragment below, by reference: its reruns update the rows and the
    # counterfactual state that the explanation picker and the export read.
    live: dict[str, Any] = st.session_state.setdefault(keys.EFFECT_LIVE, {})
    item_key = keys.effect_item(user)
    live["full_run"] = True
    try:
        counterfactual_section(handle, user, step, cache, live, item_key)
    finally:
        live["full_run"] = False

    # ------------------------------------------------------------ the explanation
    rows = live["rows"]
    titles = {r.index: r.title for r in rows}
    follow_selected_node(user, point.prefix, titles, item_key)
    if st.session_state.get(item_key) not in titles:
        st.session_state[item_key] = rows[0].index if rows else None
    pick_col, card_col = st.columns([1, 3])
    item = pick_col.selectbox("Explain item", list(titles), key=item_key,
                              format_func=lambda i: titles.get(i, str(i)))
    live["card_item"] = item
    with card_col:
        if item is not None:
            try:
                explanation_card(handle, cache, int(item))
            except ValueError as exc:
                st.error(f"Cannot explain this item: {md(exc)}. Pick another one.")
                item = None
    try:
        handles = get_strategies()
    except Exception as exc:   # the page above stands; say what is missing, no traceback
        st.warning(f"The strategies could not be compared: {md(exc)}.")
    else:
        strategy_comparison(handles, dataset, user,
                            st.session_state.get(keys.built_graph(user)), step, chosen.films)
    export_section(handle, user_graph, step, cache, live)
    details_section(handle, cache, origin, None if item is None else int(item))


page()
