"""Every page in Debian Chromium speaks plainly, opens from a link, and Recommendations answers
"why?" (#18).

The app runs on the embedded defaults (the shipped runs and LLM graphs). A link
``/recommendations?user=22&step=N`` opens that user at that point; the page shows one
sentence per fused top-10 film and the held-out film's base and fused ranks, which
must equal the library's. Then each page's visible text (default views: collapsed
Details expanders and unopened tabs are not visible) is searched for jargon. A
screenshot of each page goes to test-artifacts/plain-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.fusion.registry import VARIANT_NAMES
from models.recommenders import MODEL_NAMES
from tests.app.hostile_data import write_config
from tests.browser.conftest import StreamlitServer, start_streamlit, stop_streamlit
from tests.browser.page_helpers import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

USER = "22"
CONTROL = "seqgraph"   # the second strategy the comparison shows (trained by the fixture)
JARGON = {
    "graph node id": re.compile(r"\bd?c\d+\.\d+\b"),
    "path id": re.compile(r"\bc\d+>"),
    "variable name": re.compile(r"\b(?:l_tru|E_ori|E_div|E_base|tau|n_gpu_layers|k_intents|"
                                r"r_items|rank_gain|meets_bar)\b"),
    "internal path": re.compile(r"/home/|/tmp/|/root/|\.cache/reasonrec|\.ckpt|\.json\.gz"),
    "hash": re.compile(r"sha256", re.IGNORECASE),
    "developer target": re.compile(r"meets bar|aim is not met|aim not met|\bbar\b",
                                   re.IGNORECASE),
    "raw JSON": re.compile(r"\{\s*\""),
    "id column": re.compile(r"\b(?:item_id|user_id|item_index)\b"),
    # model and run names are identifiers: the default views say "SR-GNN session graph model"
    # and the registry's descriptions (case matters: "LLMRG" in a sentence is a word)
    "model or run name": re.compile(
        r"\b(?:" + "|".join(sorted({n for n in MODEL_NAMES if n != "pop"} | set(VARIANT_NAMES),
                                    key=len, reverse=True)) + r")\b"
        r"|\bfusion-[a-z]|\b\d{8}-\d{6}-[0-9a-f]{4}\b|(?m:^pop$)"),
}
PAGES = [("Session explorer", ""), ("Reasoning", "reasoning"),
         ("Recommendations", "recommendations"), ("Evaluation", "evaluation"),
         ("Knowledge base", "knowledge-base"), ("Settings", "settings")]
MAIN = "[data-testid='stMain']"


@pytest.fixture(scope="module")
def case(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The config, and from the library: user 22's explanation three films before the end, and
    the sequence-graph control trained here (seconds) so that two strategies have a run."""
    import torch

    from reasonrec.config import load_config
    from reasonrec.fusion import strategy_runs, strategy_top_k, workspace
    from reasonrec.studio import Studio

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        workdir = tmp_path_factory.mktemp("plain-e2e")
        config = write_config(workdir / "studio.toml", ml100k_dir, workdir / "data")
        studio = Studio(load_config(config))
        settings = studio.config.fusion
        ws = workspace(studio, settings)
        explainer = ws.explainer(ws.fused(settings.variant, train_if_missing=False))
        user_graph = explainer.user_graph(USER)
        step = user_graph.steps - 3
        explanation = explainer.explain(explainer.point(user_graph, step))
        control = ws.explainer(ws.fused(CONTROL))
        lists = {settings.variant: strategy_top_k(explainer, user_graph, step),
                 CONTROL: strategy_top_k(control, control.user_graph(USER), step)}
        # the variants without a run, as the library finds them (some ship in assets/runs)
        untrained = [r.name for r in strategy_runs(ws) if r.run is None]
    finally:
        torch.set_num_threads(threads)
    return {"config": config, "workdir": workdir, "films": user_graph.offset + step + 1,
            "explanation": explanation, "configured": settings.variant, "lists": lists,
                "untrained": untrained}


@pytest.fixture(scope="module")
def server(case: dict[str, Any]) -> Iterator[StreamlitServer]:
    started = start_streamlit(case["config"], case["workdir"])
    yield started
    stop_streamlit(started)


@pytest.fixture()
def page(chromium: Any) -> Iterator[Any]:
    # tall: Streamlit scrolls inside its own container, so a screenshot holds the viewport
    context = chromium.new_context(viewport={"width": 1440, "height": 3000})
    context.set_default_timeout(180_000)
    view = context.new_page()
    yield view
    context.close()


NO_SKELETON = "() => !document.querySelector(\"[data-testid='stSkeleton']\")"


def settled(page: Any, timeout_ms: int = 240_000) -> None:
    """No run in progress and every element drawn (placeholders linger ~1 s after a run)."""
    wait_idle(page, timeout_ms)
    page.wait_for_function(NO_SKELETON, timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def open_link(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid='stSidebarNavLink']", timeout=180_000)
    settled(page)
    assert page.get_by_text("Page not found").count() == 0, url


# Data frames draw on a canvas, so inner_text misses them: read their accessible grid (headers
# and the cells drawn), for the frames a user can see (not in a closed expander or tab).
FRAME_TEXT = """() => [...document.querySelectorAll("[data-testid='stDataFrame']")]
  .filter(frame => frame.checkVisibility())
  .flatMap(frame => [...frame.querySelectorAll("[role='columnheader'], [role='gridcell']")])
  .map(cell => cell.textContent).join("\\n")"""


def visible_text(page: Any) -> str:
    return page.locator(MAIN).inner_text() + "\n" + page.evaluate(FRAME_TEXT)


def point_shown(page: Any) -> str:
    """The "Point in history" slider's value as drawn on its thumb."""
    return page.locator("[data-testid='stSliderThumbValue']").first.inner_text().strip()


def jargon(text: str) -> dict[str, list[str]]:
    found = {name: pattern.findall(text) for name, pattern in JARGON.items()}
    return {name: hits for name, hits in found.items() if hits}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def test_a_link_opens_recommendations_with_a_sentence_per_film_and_the_true_ranks(
        case: dict[str, Any], server: StreamlitServer, page: Any, artifacts: Path) -> None:
    films, explanation = case["films"], case["explanation"]
    open_link(page, f"{server.url}/recommendations?user={USER}&step={films}")
    page.locator(".st-key-effect-summaries").wait_for()
    page.locator(".st-key-effect-fused-list table").wait_for()   # the lists' fragment drawn
    settled(page)
    # the link's user and point
    assert page.get_by_role("combobox", name="User", exact=True).input_value() == USER
    assert point_shown(page) == f"after {films} films"
    assert f"user={USER}" in page.url and f"step={films}" in page.url

    # one sentence per fused top-10 film: the library's, in its order
    summaries = page.locator(".st-key-effect-summaries").inner_text()
    assert len(explanation.items) == 10
    for item in explanation.items:
        assert f"{item.rank}. {item.title}: {item.summary}" in summaries
    # the held-out film and where each model ranks it
    true_item = page.locator(".st-key-effect-true-item").inner_text()
    info = explanation.point
    assert info.target.title in true_item
    assert f"Base model ranks it\n\n{ordinal(info.target_rank_base)}" in true_item \
        or re.search(rf"Base model ranks it\s+{ordinal(info.target_rank_base)}", true_item)
    assert re.search(rf"With reasoning\s+{ordinal(info.target_rank_fused)}", true_item)

    # technical detail stays in the one Details expander until it is opened
    text = visible_text(page)
    assert "Fidelity+" not in text and not jargon(text), jargon(text)
    page.locator("[data-testid='stExpander'] summary").filter(has_text="Details").click()
    settled(page)
    assert "Fidelity+" in visible_text(page)   # the test sees what a click shows
    page.screenshot(path=str(artifacts / "plain-recommendations.png"), full_page=True)


def test_no_page_shows_jargon_and_each_keeps_the_link(
        case: dict[str, Any], server: StreamlitServer, page: Any, artifacts: Path) -> None:
    films = case["films"]
    problems: dict[str, Any] = {}
    for title, path in PAGES:
        open_link(page, f"{server.url}/{path}?user={USER}&step={films}")
        page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first.wait_for()
        assert page.locator("[data-testid='stException']").count() == 0, title
        texts = [visible_text(page)]
        if path == "evaluation":   # each tab is a default view of its own
            for tab in page.get_by_role("tab").all():
                tab.click()
                settled(page)
                texts.append(visible_text(page))
                page.screenshot(path=str(artifacts / f"plain-evaluation-{len(texts) - 1}.png"),
                                full_page=True)
        else:
            page.screenshot(path=str(artifacts / f"plain-{path or 'session-explorer'}.png"),
                            full_page=True)
        found = jargon("\n".join(texts))
        if found:
            problems[title] = found
        if path in ("", "reasoning", "recommendations"):
            assert f"step={films}" in page.url, (title, page.url)
            assert point_shown(page) == f"after {films} films", title
    assert not problems, problems


def compare_rows(page: Any, column: str) -> list[list[str]]:
    return [row.locator("td").all_inner_texts()
            for row in page.locator(f".st-key-compare-{column} tbody tr").all()]


def test_strategies_side_by_side_base_a_and_b(
        case: dict[str, Any], server: StreamlitServer, page: Any, artifacts: Path) -> None:
    """#19: the picker offers every strategy with a trained run, in words, lists the others as
    not available with a plain reason, and shows base, A and B as the library ranks them."""
    from app.components.explanation_view import ordinal as nth
    from app.components.plain_names import strategy_words
    from app.components.strategy_compare import NEXT_MARK
    from tests.browser.page_helpers import choose

    films, lists, configured = case["films"], case["lists"], case["configured"]
    open_link(page, f"{server.url}/recommendations?user={USER}&step={films}")
    section = page.locator(".st-key-strategy-compare")
    page.locator(".st-key-compare-b table").wait_for()
    settled(page)
    assert page.locator("[data-testid='stException']").count() == 0
    picker = {letter: page.get_by_role("combobox", name=f"Strategy {letter}", exact=True)
              for letter in "AB"}
    assert picker["A"].input_value() == strategy_words(configured)
    assert picker["B"].input_value() == strategy_words(CONTROL)

    def expected(name: str, which: str = "fused") -> list[list[str]]:
        top = lists[name]
        return [[str(r.rank), r.title + (NEXT_MARK if r.index == top.target_index else "")]
                + ([str(r.base_rank)] if which == "fused" else [])
                for r in getattr(top, which)]

    assert compare_rows(page, "base") == expected(configured, "base")
    assert compare_rows(page, "a") == expected(configured)
    assert compare_rows(page, "b") == expected(CONTROL)
    assert f"ranks {nth(lists[CONTROL].target_rank)}" in page.locator(
        ".st-key-compare-b").inner_text()
    text = section.inner_text()
    untrained = case["untrained"]
    assert untrained, "some variant should be untrained on a fresh data dir"
    assert "Not available, not trained yet for this sample of users:" in text
    assert all(strategy_words(v) in text for v in untrained), text
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(artifacts / "strategy-compare.png"))

    # the picker reruns the comparison alone: A becomes the control, the same list as B
    choose(page, "Strategy A", strategy_words(CONTROL))
    page.wait_for_function("() => document.querySelector('.st-key-compare-a').innerText"
                           f".includes({strategy_words(CONTROL)!r})")
    settled(page)
    assert compare_rows(page, "a") == expected(CONTROL)
