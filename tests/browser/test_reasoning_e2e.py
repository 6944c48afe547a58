"""The Reasoning page in Debian Chromium: build on the real LLM, click a node, then #5's whole
flow (both top-k lists, an explanation, a chain off, the offline report); nothing leaves
localhost, hostile titles and LLM texts stay text.

Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from models.data import load_dataset
from tests.app.hostile_data import (
    HOSTILE_TITLES,
    HOSTILE_USER,
    IMG_TITLE,
    write_config,
    write_hostile_dataset,
)
from tests.app.reasoning_graphs import make_graph, store_graph
from tests.browser.conftest import StreamlitServer, start_streamlit, stop_streamlit
from tests.browser.page_helpers import (
    BASE,
    FUSED,
    GRAPH_IFRAME,
    NODE_CENTRE_JS,
    choose_user,
    graph_frame,
    off_machine,
    open_reasoning,
    share_item_vectors,
    switch_chain_off,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

DETAILS = ".st-key-reasoning-node-details"
USER = "13"
HOSTILE_REASON = '<img src=x onerror="window.__xss=1">'
HOSTILE_INTENT = "<script>window.__xss=1</script>"


@pytest.fixture(scope="module")
def reasoning_server(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[StreamlitServer]:
    """The app on ml-100k with an empty graph store (the test builds with the real LLM)."""
    workdir = tmp_path_factory.mktemp("app-reasoning")
    share_item_vectors(workdir / "data")
    server = start_streamlit(write_config(workdir / "studio.toml", ml100k_dir, workdir / "data"),
                             workdir)
    yield server
    stop_streamlit(server)


@pytest.fixture(scope="module")
def hostile_reasoning_server(tmp_path_factory: pytest.TempPathFactory
                             ) -> Iterator[StreamlitServer]:
    """The hostile catalogue, with a stored graph whose LLM texts inject script too."""
    workdir = tmp_path_factory.mktemp("app-reasoning-hostile")
    data = write_hostile_dataset(workdir / "hostile")
    graph = make_graph(load_dataset(data), HOSTILE_USER, reason=HOSTILE_REASON,
                       intent=HOSTILE_INTENT)
    store_graph(workdir / "data" / "reasoning" / "graphs", graph)
    server = start_streamlit(write_config(workdir / "studio.toml", data, workdir / "data"), workdir)
    yield server
    stop_streamlit(server)


def node_point(page: Any, frame: Any, node_id: str) -> tuple[float, float]:
    iframe = page.locator(GRAPH_IFRAME)
    iframe.scroll_into_view_if_needed()
    box = iframe.bounding_box()
    point = frame.evaluate(NODE_CENTRE_JS, node_id)
    return box["x"] + point["x"], box["y"] + point["y"]


def click_node(page: Any, frame: Any, node_id: str) -> str:
    """Click a node in the graph; returns the details panel's text once it names the node."""
    x, y = node_point(page, frame, node_id)
    page.mouse.click(x, y)
    page.wait_for_function(
        "(sel) => { const e = document.querySelector(sel); return e && e.innerText.length > 0; }",
        arg=DETAILS, timeout=30_000)
    wait_idle(page)
    return page.locator(DETAILS).inner_text()


def hover_text(page: Any, frame: Any, node_id: str) -> str:
    x, y = node_point(page, frame, node_id)
    page.mouse.move(x, y)
    tooltip = frame.locator("div.vis-tooltip")
    tooltip.wait_for(state="visible", timeout=5_000)
    text = tooltip.inner_text()
    box = page.locator(GRAPH_IFRAME).bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    return text


@pytest.mark.llm
def test_build_on_the_real_llm_then_click_a_node(reasoning_server: StreamlitServer,
                                                 browser_page: Any, artifacts: Path) -> None:
    page = browser_page
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_reasoning(page, reasoning_server)
    choose_user(page, USER)
    page.get_by_text("No reasoning graph for user").wait_for()

    page.get_by_role("button", name="Build reasoning graph").click()
    # Live progress: the status box shows the stages and the streamed text while it runs.
    page.get_by_text("Building the reasoning graph on the local LLM").wait_for(timeout=120_000)
    page.locator("[data-testid='stExpander'] [data-testid='stCode']").first.wait_for(
        timeout=120_000)
    page.screenshot(path=str(artifacts / "10-reasoning-building.png"), full_page=True)
    page.get_by_text("Reasoning graph built in").wait_for(timeout=300_000)
    wait_idle(page)
    frame = graph_frame(page)
    page.get_by_test_id("stMetric").filter(has_text="Tokens/s").wait_for()
    assert "GPU offload" in page.get_by_text("GPU offload").first.inner_text()

    ids = frame.evaluate("() => window.rrNodes.getIds()")
    assert "s0" in ids and "target" in ids
    last = max((i for i in ids if i.startswith("s")), key=lambda i: int(i[1:]))
    details = click_node(page, frame, last)
    assert "session item" in details and "source stage" in details and "chain" in details
    assert "reason" in details and "step" in details
    # The click selected the node in the app: the select box shows it, the graph highlights it.
    box = page.get_by_role("combobox", name="Selected node", exact=True)
    assert box.input_value().startswith(f"step {int(last[1:]) + 1}:")
    frame = graph_frame(page)
    page.wait_for_timeout(300)
    assert frame.evaluate("() => window.rrNetwork.getSelectedNodes()") == [last]
    page.screenshot(path=str(artifacts / "11-reasoning-node-selected.png"), full_page=True)

    # A second click on another node moves the selection.
    details = click_node(page, frame, "target")
    assert "never seen by the models" in details.lower()
    page.wait_for_timeout(300)
    assert graph_frame(page).evaluate("() => window.rrNetwork.getSelectedNodes()") == ["target"]
    # And the other way round: a node picked in the app is highlighted in the graph.
    box.click()
    page.keyboard.type("step 1:")
    page.keyboard.press("Enter")
    wait_idle(page)
    assert box.input_value().startswith("step 1:")
    frame = graph_frame(page)
    frame.wait_for_function("() => window.rrNetwork.getSelectedNodes()[0] === 's0'",
                            timeout=10_000)
    assert "1 of 10" in page.locator(DETAILS).inner_text()

    # The rest of #5's flow on the graph just built, with the shipped fused model:
    # both top-k lists and an explanation, a chain switched off, the offline report.
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Recommendations").click()
    page.locator(FUSED).wait_for(timeout=300_000)     # the first visit loads the shipped runs
    wait_idle(page, 300_000)
    assert page.get_by_role("combobox", name="User", exact=True).input_value() == USER
    # the tables can be drawn a moment after the run reports idle (seen once in CI): wait
    # for their rows before counting them
    for top_k in (BASE, FUSED):
        page.locator(f"{top_k} table tbody tr").first.wait_for(timeout=60_000)
        assert page.locator(f"{top_k} table tbody tr").count() == 10
    card = page.locator(".st-key-effect-card")
    card.wait_for()
    text = card.inner_text()   # the chosen film's sentence and what leads to it, in words
    assert text.startswith("Why ") and any(
        words in text for words in ("What leads to it", "No reasoning path reaches",
                                    "does not lower it", "Show paths with no measured effect"))
    page.screenshot(path=str(artifacts / "13-flow-recommendations.png"), full_page=True)

    switch_chain_off(page)
    # Recomputed, and the page says what entered and left (possibly nothing: the
    # tiny model's graph may not move this user's top-k).
    notice = page.get_by_text("recomputed in", exact=False).first.inner_text()
    assert "Entered:" in notice and "Left:" in notice
    page.screenshot(path=str(artifacts / "14-flow-chain-off.png"), full_page=True)

    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download HTML report").click()
    report = artifacts / "15-flow-report.html"
    download.value.save_as(report)
    html = report.read_text("utf-8")
    assert USER in html and "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)

    assert requests
    assert not off_machine(requests + sockets), f"requests left localhost: {off_machine(requests)}"


def test_hostile_titles_and_llm_text_never_execute(hostile_reasoning_server: StreamlitServer,
                                                   browser_page: Any, artifacts: Path) -> None:
    page = browser_page
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_reasoning(page, hostile_reasoning_server)
    choose_user(page, HOSTILE_USER)
    frame = graph_frame(page)
    page.get_by_text("Show rejected chains", exact=True).click()   # every reason on screen
    wait_idle(page)
    frame = graph_frame(page)

    ids = frame.evaluate("() => window.rrNodes.getIds()")
    shown = "\n".join(hover_text(page, frame, node_id) for node_id in ids)
    for text in (*HOSTILE_TITLES, HOSTILE_REASON, HOSTILE_INTENT):
        assert text in shown, f"{text!r} is not shown as text in a tooltip"
    assert frame.locator("div.vis-tooltip img, div.vis-tooltip script, div.vis-tooltip svg, "
                         "div.vis-tooltip a").count() == 0
    details = click_node(page, frame, "s1")
    assert HOSTILE_REASON[:20] in details
    details = click_node(page, frame, "target")
    assert IMG_TITLE in details
    assert page.locator(f"{DETAILS} img, {DETAILS} script, {DETAILS} a").count() == 0
    page.screenshot(path=str(artifacts / "12-reasoning-xss.png"), full_page=True)

    assert page.evaluate("() => typeof window.__xss") == "undefined"
    for each in page.frames:
        assert each.evaluate("() => typeof window.__xss") == "undefined", each.url
    assert not dialogs
    assert not [url for url in requests if urlparse(url).path.rstrip("/").endswith("/x")]
    assert not off_machine(requests)
