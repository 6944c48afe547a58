"""AppTest flows for the Recommendations-and-effect page, on real ml-100k and a real fused model.

The fused model is trained in seconds (tests/app/effect_setup.py). A model that
small may stay at its identity start, where switching a chain off changes no
rank: the chain test therefore checks that the page shows exactly what the
library computes, and a session-item removal (which changes E_base, so it has
a real effect) checks that the list visibly changes and comes back.
AppTest cannot click plotly: the chart's selection handler is tested directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import keys
from app.components.effect_charts import rank_shift_figure, selected_item, shift_rows
from app.components.effect_state import md
from app.components.explanation_view import SHOW_HIDDEN_LABEL, leads_to, ordinal
from models.data import Dataset
from models.graph_data import reasoning_elements
from reasonrec.fusion import KEPT_BASE_NOTE, below_base_note, kept_base
from app.state import CURRENT_USER
from tests.app.conftest import APP, UseConfig
from tests.app.effect_setup import write_fast_config
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def fast_config(ml100k: Dataset, ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, list[str]]:
    config, users = write_fast_config(ml100k, ml100k_dir, tmp_path_factory.mktemp("effect"))
    from app.state import clear_shared
    clear_shared()  # a model cached by another module's config must not be reused
    return config, users


@pytest.fixture()
def graph_users(fast_config: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[list[str]]:
    """$REASONREC_CONFIG -> the fast config; yields the users who have a graph."""
    monkeypatch.setenv("REASONREC_CONFIG", str(fast_config[0]))
    from app.state import clear_shared, get_studio
    if get_studio().config.data_dir != fast_config[0].parent / "data":
        clear_shared()  # another test cached its own config's studio and models
    yield fast_config[1]


PAGE = "views/recommendations.py"


def open_page(user: str | None = None) -> AppTest:
    """The app on the Recommendations page, with ``user`` chosen (as if picked on another page)."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    if user is not None:
        at.session_state[CURRENT_USER] = user
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if user is not None:
        assert at.selectbox(key="user").value == user
    return at


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The one table with ``column`` (base list: "fused rank"; fused: "base rank" or "rank
    before"; the base-only list of users without a graph: "year")."""
    frames = [d.value for d in [*at.table, *at.dataframe] if column in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in [*at.table, *at.dataframe]]
    return frames[0]


def explainer():
    from app.state import get_fusion
    return get_fusion().explainer  # the process-wide handle the page used


def get_fusion_run_kept_base() -> bool:
    from app.state import get_fusion
    return kept_base(get_fusion().run)


def test_a_fused_run_below_the_base_on_validation_says_so(ml100k_app: Path) -> None:
    """The shipped LLMRG run is its best trained epoch (``selection = "trained"``), which
    scores below its start, the base model, on validation: the page says so in words, as a
    finding, and never says that reasoning changes nothing (it does move films)."""
    from app.state import clear_shared, get_fusion
    from models.fusion.samples import sample_users
    from reasonrec.config import load_config
    from reasonrec.studio import Studio

    clear_shared()
    studio = Studio(load_config(ml100k_app))
    settings = studio.config.fusion
    user = studio.dataset.user_ids[int(sample_users(studio.split, settings.users,
                                                    settings.seed)[0])]
    at = open_page(user)
    run = get_fusion().run
    assert get_fusion_run_kept_base() is False and run.report.best_epoch >= 1
    note = below_base_note(run)
    assert note is not None and f"{run.report.best_valid['NDCG@10']:.4f}" in note
    assert [i.value for i in at.info if note in i.value]
    assert not [i.value for i in at.info if KEPT_BASE_NOTE in i.value]
    clear_shared()


def test_both_lists_chart_and_card(graph_users: list[str]) -> None:
    user = graph_users[0]
    at = open_page(user)
    ex = explainer()
    point = ex.point(user)
    top = ex.top_k(point)
    base, fused = frame(at, "fused rank"), frame(at, "base rank")
    # this fused model trained past its start, so no "reasoning changes nothing" finding
    assert get_fusion_run_kept_base() is False
    assert not any(KEPT_BASE_NOTE in i.value for i in at.info)
    assert list(base["title"]) == [r.title for r in top.base]
    assert list(fused["title"]) == [r.title for r in top.fused]
    assert list(fused["base rank"]) == [r.other_rank for r in top.fused]
    assert len(fused) == ex.k
    # one scale on every page: films watched; the graph's window is the slider's range
    slider = at.slider(key=f"effect_step_{user}")
    offset, steps = point.user.offset, point.user.steps
    assert (slider.min, slider.max, slider.value) == (offset + 1, offset + steps, offset + steps)

    # a sentence for every fused item, and the held-out film's ranks in both models
    explanation = ex.explain(point)
    text = "\n".join(m.value for m in at.markdown)
    for item in explanation.items:
        assert item.summary and md(item.summary) in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Base model ranks it"] == ordinal(explanation.point.target_rank_base)
    assert metrics["With reasoning"] == ordinal(explanation.point.target_rank_fused)
    assert md(explanation.point.target.title) in text

    # the card of the first fused item, then of another item picked in the selectbox
    assert metrics["Rank with reasoning"] == "1"
    assert "Fidelity+" in metrics and "Deletion" in metrics and "Random" in metrics  # Details
    chosen = top.fused[3]
    at.selectbox(key=f"effect_item_{user}").set_value(chosen.index).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rank with reasoning"] == "4"
    assert metrics["Base rank"] == str(chosen.other_rank)
    item = ex.explain_item(point, chosen.index)
    assert metrics["Fidelity+"] == f"{item.fidelity.plus:.2f}"
    # the paths that reach it, each with its facts; the rest only behind the toggle
    text = "\n".join(m.value for m in at.markdown)
    shown = [p for p in item.paths if leads_to(p)]
    hidden = [p for p in item.paths if not leads_to(p)]
    for path in shown:
        assert all(md(fact.text) in text for fact in path.evidence)
    toggle = [t for t in at.toggle if t.label == SHOW_HIDDEN_LABEL]
    if hidden:
        hidden_facts = [md(f.text) for p in hidden for f in p.evidence
                        if not any(f.text == g.text for q in shown for g in q.evidence)]
        assert all(fact not in text for fact in hidden_facts)
        toggle[0].set_value(True).run()
        assert not at.exception
        text = "\n".join(m.value for m in at.markdown)
        assert all(fact in text for fact in hidden_facts)
        assert any("Hidden by default" in c.value for c in at.caption)
    else:
        assert not toggle


def test_chart_selection_opens_the_item(graph_users: list[str]) -> None:
    user = graph_users[1]
    at = open_page(user)
    ex = explainer()
    top = ex.top_k(ex.point(user))
    rows = shift_rows(top)
    fig = rank_shift_figure(rows, ex.k)
    items = fig.data[-1]   # one point trace carries every item (two points per item: base, fused)
    assert set(items.customdata) == {r.index for r in rows}
    assert len(fig.data) <= 5, "one trace per item makes every toggle redraw slow"
    # what plotly sends back on a click on the third item's fused point, through the handler
    state = {"selection": {"points": [{"curve_number": len(fig.data) - 1, "point_index": 5,
                                       "customdata": items.customdata[5]}]}}
    assert selected_item(state) == rows[2].index
    assert selected_item({"selection": {"points": []}}) is None
    assert selected_item(None) is None
    # the page's on_select callback puts the selected item into the item selectbox
    handler = AppTest.from_function(_select_script, args=(state,)).run()
    assert not handler.exception
    assert handler.session_state["item"] == rows[2].index
    assert at.selectbox(key=f"effect_item_{user}").value == rows[0].index


def _select_script(state: dict) -> None:
    import streamlit as st

    from app.components.effect_state import select_from_chart
    st.session_state["chart"] = state
    select_from_chart("chart", "item")


def test_chain_toggle_matches_the_library_and_restore(graph_users: list[str]) -> None:
    user = graph_users[2]
    at = open_page(user)
    ex = explainer()
    point = ex.point(user)
    original = list(frame(at, "base rank")["title"])
    chains, _ = reasoning_elements(point.prefix)
    key = keys.effect_off(user, point.step)["chains"]
    at.multiselect(key=key).set_value([chains[0]]).run()
    assert not at.exception
    expected = ex.counterfactual(point, ex.removal(point, chains=[chains[0]]))
    after = frame(at, "rank before")
    assert list(after["title"]) == [r.title for r in expected.top_k]
    assert list(after["rank before"]) == [r.other_rank for r in expected.top_k]
    messages = [m.value for m in [*at.warning, *at.info]]
    assert any("recomputed" in m and "Entered:" in m and "Left:" in m for m in messages)

    at.button(key="effect_restore").click().run()
    assert not at.exception
    assert at.multiselect(key=key).value == []
    assert list(frame(at, "base rank")["title"]) == original


def test_a_switch_with_a_real_effect_changes_the_list_and_restore_returns_it(
        graph_users: list[str]) -> None:
    ex = explainer()
    # the first chain (else session item) whose removal really changes the fused top-k
    found = None
    for user in graph_users:
        point = ex.point(user)
        chains, _ = reasoning_elements(point.prefix)
        window = [str(a["item_id"]) for _, a in point.prefix.nodes(data=True)
                  if a["kind"] == "session_item"]
        for kind, ids in (("chains", chains), ("items", window)):
            for one in ids:
                cf = ex.counterfactual(point, ex.removal(point, **{kind: [one]}))
                if cf.entered:
                    found = (user, point, kind, one, cf)
                    break
            if found:
                break
        if found:
            break
    assert found, "no chain or session item of the sample moves the fused top-k"
    user, point, kind, one, expected = found
    at = open_page(user)
    original = list(frame(at, "base rank")["title"])
    at.multiselect(key=keys.effect_off(user, point.step)[kind]).set_value([one]).run()
    assert not at.exception
    after = list(frame(at, "rank before")["title"])
    assert after == [r.title for r in expected.top_k] and after != original
    (warning,) = [w.value for w in at.warning]
    assert "recomputed" in warning and "Entered:" in warning and "Left:" in warning
    at.button(key="effect_restore").click().run()
    assert list(frame(at, "base rank")["title"]) == original


def test_step_slider_moves_the_point(graph_users: list[str]) -> None:
    user = graph_users[0]
    at = open_page(user)
    ex = explainer()
    at.slider(key=f"effect_step_{user}").set_value(ex.point(user).user.offset + 5).run()
    assert not at.exception
    top = ex.top_k(ex.point(user, 4))   # after offset + 5 films: window step 4
    assert list(frame(at, "base rank")["title"]) == [r.title for r in top.fused]


def test_a_graph_from_the_reasoning_page_is_used(graph_users: list[str],
                                                 ml100k: Dataset) -> None:
    user, other = graph_users[0], graph_users[1]
    at = open_page()
    ex = explainer()
    graph = ex.source.get(user)
    at.session_state[keys.built_graph(user)] = graph
    at.selectbox(key="user").set_value(user).run()
    assert not at.exception
    assert any("built on the Reasoning page" in c.value for c in at.caption)
    # a graph that belongs to someone else is refused with what to do next
    at.session_state[keys.built_graph(other)] = nx.DiGraph(graph)
    at.selectbox(key="user").set_value(other).run()
    assert not at.exception
    assert at.error and "Rebuild it on the Reasoning page" in at.error[0].value
    assert "fused rank" not in [c for d in [*at.table, *at.dataframe] for c in d.value.columns]


def test_user_without_a_graph_gets_info_and_the_base_list(graph_users: list[str],
                                                          ml100k: Dataset) -> None:
    user = next(u for u in ml100k.user_ids if u not in graph_users)
    at = open_page(user)
    assert at.info and "no reasoning graph" in at.info[0].value
    assert "Reasoning" in at.info[0].value and "reasonrec build-graphs" in at.info[0].value
    base = frame(at, "year")
    assert len(base) == explainer().k and list(base["rank"]) == list(range(1, 11))
    assert not at.error


def test_fused_model_error_shows_st_error_and_base_list(ml100k_dir: Path,
                                                        use_config: UseConfig) -> None:
    use_config(ml100k_dir, '[fusion]\ngraphs = "/nonexistent/graphs"\n')
    at = open_page()
    assert at.error and "Could not load the fused model" in at.error[0].value
    assert "/nonexistent/graphs" in at.error[0].value
    assert len(frame(at, "year")) == 10


def test_hostile_titles_stay_text_when_no_fused_model(hostile_app: Path) -> None:
    from tests.app.hostile_data import HOSTILE_USER

    at = open_page(HOSTILE_USER)
    assert at.error and "Could not load the fused model" in at.error[0].value
    base = frame(at, "year")
    assert len(base) >= 1   # titles reach the page only as table cells
    for element in [*at.markdown, *at.caption, *at.info, *at.error, *at.subheader]:
        assert "<script" not in element.value and "onerror=" not in element.value.replace(
            "\\", "")


def test_a_candidate_clicked_on_the_reasoning_page_opens_its_explanation(
        graph_users: list[str]) -> None:
    ex = explainer()
    found = None
    for user in graph_users:
        point = ex.point(user)
        top = ex.top_k(point)
        listed = {r.index: r for r in [*top.base, *top.fused]}
        nodes = [n for n, a in point.prefix.nodes(data=True) if a["kind"] == "candidate_item"
                 and a["item_index"] in listed and a["item_index"] != top.fused[0].index]
        if nodes:
            found = (user, nodes[0], point.prefix.nodes[nodes[0]]["item_index"])
            break
    assert found, "no graph candidate of the sample is in a top-k list"
    user, node, index = found
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.session_state[CURRENT_USER] = user
    at.session_state[keys.SELECTED_NODE] = {"user": user, "node": node}
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key=f"effect_item_{user}").value == index
    # picking another item afterwards is not overridden by the old click
    other = ex.top_k(ex.point(user)).fused[0].index
    at.selectbox(key=f"effect_item_{user}").set_value(other).run()
    assert at.selectbox(key=f"effect_item_{user}").value == other


def test_a_corrupt_graph_file_is_an_error_with_what_to_do(
        graph_users: list[str], fast_config: tuple[Path, list[str]], ml100k: Dataset) -> None:
    user = next(u for u in ml100k.user_ids if u not in graph_users)  # not in the trained sample
    broken = fast_config[0].parent / "graphs" / f"{user}.json"
    broken.write_text('{"schema": "reasonrec.reasoning-graph", "nodes": [', encoding="utf-8")
    try:
        at = open_page(user)
        assert at.error and "cannot be used" in at.error[0].value
        assert "Rebuild it" in at.error[0].value
        assert len(frame(at, "year")) == explainer().k   # the base list still shows
    finally:
        broken.unlink()


def test_strategy_comparison_shows_each_trained_strategy_and_names_the_others(
        graph_users: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """#19: the pickers offer the registry's variants that have a run, in words; their lists
    are the library's; every other variant is named as not available; a strategy that fails
    to rank is a warning in its own column, never a traceback."""
    import reasonrec.fusion
    from app.components.plain_names import strategy_words
    from app.components.strategy_compare import NEXT_MARK
    from app.keys import STRATEGY_A, STRATEGY_B
    from app.state import get_strategies
    from models.fusion.registry import VARIANT_NAMES

    user = graph_users[0]
    at = open_page(user)
    handles = get_strategies()
    trained = [r.name for r in handles.available()]
    assert trained and handles.fusion.run.variant in trained
    picker = at.selectbox(key=STRATEGY_A)
    assert picker.value == handles.fusion.run.variant
    assert list(picker.options) == [strategy_words(n) for n in trained]
    ex = explainer()
    graph = ex.user_graph(user)
    top = reasonrec.fusion.strategy_top_k(ex, graph, graph.steps - 1)
    lists = [t.value for t in at.table if "base model's rank" in t.value.columns]
    assert lists and list(lists[0]["title"]) == [
        r.title + (NEXT_MARK if r.index == top.target_index else "") for r in top.fused]
    assert list(lists[0]["base model's rank"]) == [r.base_rank for r in top.fused]
    captions = "\n".join(c.value for c in at.caption)
    assert f"ranks {ordinal(top.target_rank)}" in captions
    for name in set(VARIANT_NAMES) - set(trained):
        assert md(strategy_words(name)) in captions, name   # markdown-escaped text

    def fails(*_: object) -> None:
        raise ValueError("the strategy's inputs are missing")

    monkeypatch.setattr(reasonrec.fusion, "strategy_top_k", fails)
    at.selectbox(key=STRATEGY_B).set_value(trained[0]).run()
    assert not at.exception
    assert any("could not rank" in w.value and "inputs are missing" in w.value
               for w in at.warning)
    assert frame(at, "fused rank") is not None   # the page above still stands
