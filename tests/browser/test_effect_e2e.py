"""Recommendations and effect in Debian Chromium: lists, explanation, counterfactual, report.

The app runs on a fused model trained in seconds on the genre stand-in graphs of a
small sample (tests/app/effect_setup.py). This test first asks the library for a
sampled user and a chain whose removal really changes the fused top-k. The downloaded report is opened in a second browser
context in which every request that is not a local file is refused.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.components.explanation_view import chain_name
from models.data import Dataset
from models.graph_data import reasoning_elements
from models.fusion.samples import sample_users
from tests.app.effect_setup import write_fast_config
from tests.browser.conftest import StreamlitServer, start_streamlit, stop_streamlit
from tests.browser.page_helpers import (
    BASE,
    FUSED,
    FUSED_TEXT,
    off_machine,
    switch_chain_off,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]



@pytest.fixture(scope="module")
def effect_case(ml100k: Dataset, ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Any]:
    """Config, and from the library: a user, a switch with a real effect and the lists."""
    import torch

    from reasonrec.config import load_config
    from reasonrec.fusion import workspace
    from reasonrec.studio import Studio

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        workdir = tmp_path_factory.mktemp("effect-e2e")
        # A fused model trained in seconds on the genre stand-in graphs, one whose chains
        # move its top-k (the shipped run's chains move few films: its best trained epoch
        # stays close to its start, the base model).
        config, _ = write_fast_config(ml100k, ml100k_dir, workdir)
        studio = Studio(load_config(config))
        settings = studio.config.fusion
        ws = workspace(studio, settings)
        explainer = ws.explainer(ws.fused(settings.variant))
        users = [studio.dataset.user_ids[int(u)]
                 for u in sample_users(studio.split, settings.users, settings.seed)]
        for user in users:
            point = explainer.point(user)
            chains, _ = reasoning_elements(point.prefix)
            for chain in chains:
                cf = explainer.counterfactual(point, explainer.removal(point, chains=[chain]))
                if cf.entered:
                    top = explainer.top_k(point)
                    # the switch's label names the chain in words ("Chain 3: …")
                    label = chain_name(chain, chains).capitalize() + ":"
                    return {"config": config, "workdir": workdir, "user": user, "chain": label,
                            "fused": [r.title for r in top.fused],
                            "base": [r.title for r in top.base],
                            "after": [r.title for r in cf.top_k],
                            "entered": [i.title for i in cf.entered]}
    finally:
        torch.set_num_threads(threads)
    pytest.fail("no chain of the sample moves the fused top-k")


@pytest.fixture(scope="module")
def effect_server(effect_case: dict[str, Any]) -> Iterator[StreamlitServer]:
    server = start_streamlit(effect_case["config"], effect_case["workdir"])
    yield server
    stop_streamlit(server)


def table_titles(page: Any, selector: str) -> list[str]:
    """The "title" column of a list drawn with st.table (its text is in the DOM)."""
    headers = page.locator(f"{selector} table thead th").all_inner_texts()
    column = [h.strip() for h in headers].index("title")
    rows = page.locator(f"{selector} table tbody tr")
    return [rows.nth(i).locator("th, td").nth(column).inner_text().strip()
            for i in range(rows.count())]


def test_lists_explanation_counterfactual_and_offline_report(
        effect_case: dict[str, Any], effect_server: StreamlitServer, chromium: Any,
        artifacts: Path, tmp_path: Path) -> None:
    # a tall viewport: Streamlit scrolls inside its own container, so full_page screenshots
    # show only what the viewport holds
    context = chromium.new_context(viewport={"width": 1440, "height": 2600},
                                   accept_downloads=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _flow(page, effect_server.url, effect_case, artifacts, tmp_path)
    except Exception:
        page.screenshot(path=str(artifacts / "effect-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert not errors, errors
    left = off_machine(requests)
    assert not left, left
    _open_offline(chromium, tmp_path / "report.html", effect_case, artifacts)


def _flow(page: Any, url: str, effect_case: dict[str, Any], artifacts: Path,
          tmp_path: Path) -> None:
    """Lists, explanation, chain off, report download, restore."""
    user = effect_case["user"]
    page.goto(f"{url}/recommendations")
    box = page.get_by_role("combobox", name="User", exact=True)
    box.wait_for(timeout=120_000)
    wait_idle(page, 180_000)  # the first visit loads the saved base and fused runs
    box.click()
    page.keyboard.type(user)
    page.get_by_role("option", name=user, exact=True).click()
    wait_idle(page)
    page.wait_for_function(f"(t) => ({FUSED_TEXT}).includes(t)", arg=effect_case["fused"][0])
    wait_idle(page)

    # both lists, the rank-shift chart and an explanation card
    assert table_titles(page, BASE) == effect_case["base"]
    assert table_titles(page, FUSED) == effect_case["fused"]
    page.locator(".st-key-effect-card").wait_for()
    card = page.locator(".st-key-effect-card").inner_text()
    assert "Why" in card and "Rank with reasoning" in card and "Base rank" in card
    assert page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").count() >= 1
    page.screenshot(path=str(artifacts / "effect-01-lists-and-explanation.png"),
                    full_page=True)

    # switch the chain off: the fused list changes and says what entered
    switch_chain_off(page, effect_case["chain"])
    after = table_titles(page, FUSED)
    assert after == effect_case["after"] and after != effect_case["fused"]
    alert = page.get_by_text("recomputed", exact=False).first.inner_text()
    assert "Entered:" in alert and "Left:" in alert
    page.screenshot(path=str(artifacts / "effect-02-chain-off.png"), full_page=True)

    # download the report of this state
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download HTML report").click()
    report = tmp_path / "report.html"
    info.value.save_as(report)

    # restore
    page.get_by_role("button", name="Restore original").click()
    page.wait_for_function(
        f"() => ({FUSED_TEXT}).includes('Fused top') && !({FUSED_TEXT}).includes('after the')")
    wait_idle(page)
    assert table_titles(page, FUSED) == effect_case["fused"]
    _select_in_chart(page, effect_case, artifacts)
    _tour_other_pages(page, artifacts)


def _card_heading(page: Any) -> str:
    return page.locator(".st-key-effect-card h4").first.inner_text().strip()


def _select_in_chart(page: Any, effect_case: dict[str, Any], artifacts: Path) -> None:
    """Clicking an item's point in the rank-shift chart opens its explanation card."""
    before = _card_heading(page)
    # the last trace holds every item's points, two per item (base, fused), in row order
    points = page.locator(".st-key-effect-rank-chart .scatterlayer .trace").last \
        .locator("path.point")
    assert points.count() >= 6
    box = points.nth(5).bounding_box()   # the third item's fused point
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "(b) => (document.querySelector('.st-key-effect-card h4')?.innerText ?? b).trim() !== b",
        arg=before)
    wait_idle(page)
    after = _card_heading(page)
    assert after.startswith("Why ")
    assert after[len("Why "):] in set(effect_case["fused"]) | set(effect_case["base"])
    page.screenshot(path=str(artifacts / "effect-04-chart-selection.png"), full_page=True)


def _tour_other_pages(page: Any, artifacts: Path) -> None:
    """Evaluation, Knowledge base and Settings open on this config, without errors
    (a screenshot of each: the closing note's page gallery)."""
    for title, heading, shot in (("Evaluation", "Evaluation and error analysis", "06-evaluation"),
                                 ("Knowledge base", "Knowledge base", "07-knowledge-base"),
                                 ("Settings", "Settings", "08-settings")):
        page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
        wait_idle(page, 180_000)   # Evaluation scores the fused sample on its first visit
        assert page.locator("[data-testid='stException']").count() == 0, title
        page.screenshot(path=str(artifacts / f"{shot}.png"), full_page=True)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Evaluation").click()
    page.get_by_role("tab", name="Users: top-10 outcomes").click()
    wait_idle(page)
    page.screenshot(path=str(artifacts / "06-evaluation-users.png"), full_page=True)


def _open_offline(chromium: Any, report: Path, effect_case: dict[str, Any],
                  artifacts: Path) -> None:
    user = effect_case["user"]
    # the report, offline: every request that is not the file itself is refused
    offline = chromium.new_context(viewport={"width": 1300, "height": 1000})
    seen: list[str] = []

    def only_files(route: Any) -> None:
        seen.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    offline.route("**/*", only_files)
    try:
        view = offline.new_page()
        view.goto(report.as_uri())
        text = view.locator("body").inner_text()
        assert f"Recommendations for user {user}" in text
        for title in effect_case["fused"][:3] + effect_case["entered"][:1]:
            assert title in text
        assert view.locator("svg").count() >= 3
        view.screenshot(path=str(artifacts / "effect-03-report-offline.png"), full_page=True)
    finally:
        offline.close()
    assert all(u.startswith("file:") for u in seen), seen
