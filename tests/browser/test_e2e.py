"""End-to-end in Debian Chromium: pages render, nothing leaves localhost, hostile titles stay text.

Screenshots of every page visited go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.app.hostile_data import (
    CLOSE_SCRIPT_TITLE,
    HOSTILE_GENRE,
    HOSTILE_TITLES,
    IMG_TITLE,
    SCRIPT_TITLE,
)
from tests.browser.conftest import StreamlitServer
from tests.browser.page_helpers import NODE_CENTRE_JS, choose, off_machine, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

GRAPH_IFRAME = ".st-key-session-graph iframe"


def open_app(page: Any, server: StreamlitServer) -> None:
    page.goto(server.url)
    page.wait_for_selector("[data-testid='stMetric']", timeout=90_000)  # the dataset loaded
    wait_idle(page)


def open_explorer(page: Any) -> Any:
    """Go to the session explorer; returns the graph iframe's Frame once vis-network drew it."""
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Session explorer").click()
    page.wait_for_selector(GRAPH_IFRAME, timeout=60_000)
    wait_idle(page)
    return graph_frame(page)


def graph_frame(page: Any) -> Any:
    page.frame_locator(GRAPH_IFRAME).locator("#mynetwork canvas").wait_for(timeout=30_000)
    frame = page.locator(GRAPH_IFRAME).element_handle().content_frame()
    frame.wait_for_function("() => window.rrNetwork !== undefined", timeout=30_000)
    return frame


def hover_node(page: Any, frame: Any, node_id: str) -> str:
    """Hover a graph node and return its tooltip's text (as the browser renders it)."""
    iframe = page.locator(GRAPH_IFRAME)
    iframe.scroll_into_view_if_needed()
    box = iframe.bounding_box()
    point = frame.evaluate(NODE_CENTRE_JS, node_id)
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
    tooltip = frame.locator("div.vis-tooltip")
    tooltip.wait_for(state="visible", timeout=5_000)
    text = tooltip.inner_text()
    page.mouse.move(box["x"] + 2, box["y"] + 2)  # away, so the next hover opens a fresh one
    return text


def test_pick_user_and_explore_session(ml100k_server: StreamlitServer, browser_page: Any,
                                       artifacts: Path) -> None:
    page = browser_page
    open_app(page, ml100k_server)                 # the studio opens on the session explorer
    choose(page, "User id", "13")
    frame = open_explorer(page)
    assert page.get_by_role("combobox", name="User id", exact=True).input_value() == "13"
    assert frame.locator("#mynetwork canvas").count() >= 1
    ids = frame.evaluate("() => window.rrNodes.getIds()")
    assert len(ids) == 11 and ids[-1] == "next"  # a window of l_tru = 10, then the next item
    assert "never seen by the models" in hover_node(page, frame, "next").lower()
    first = hover_node(page, frame, ids[0])
    assert "item 1 of the window" in first and "of the history" in first
    expect_legend = frame.locator("#rr-legend").inner_text()
    assert "true next item" in expect_legend
    page.screenshot(path=str(artifacts / "02-session-explorer.png"), full_page=True)

    # Drag: a node moves under the mouse (physics is off, so it stays where dropped).
    before = frame.evaluate(NODE_CENTRE_JS, ids[1])
    box = page.locator(GRAPH_IFRAME).bounding_box()
    page.mouse.move(box["x"] + before["x"], box["y"] + before["y"])
    page.mouse.down()
    page.mouse.move(box["x"] + before["x"] + 40, box["y"] + before["y"] + 60, steps=8)
    page.mouse.up()
    after = frame.evaluate(NODE_CENTRE_JS, ids[1])
    assert abs(after["y"] - before["y"]) > 20
    # Zoom: the wheel changes the view scale.
    scale = frame.evaluate("() => window.rrNetwork.getScale()")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(300)
    assert frame.evaluate("() => window.rrNetwork.getScale()") != pytest.approx(scale)

    # Moving the point in the history redraws the window (keyboard on the slider).
    page.get_by_role("slider").first.focus()
    page.keyboard.press("Home")
    wait_idle(page)
    frame = graph_frame(page)
    assert frame.evaluate("() => window.rrNodes.getIds().length") == 2  # 1 item + the next one


def test_no_request_leaves_localhost(ml100k_server: StreamlitServer, browser_page: Any,
                                     artifacts: Path) -> None:
    page = browser_page
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))  # every frame's
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_app(page, ml100k_server)
    frame = open_explorer(page)
    hover_node(page, frame, "next")
    for title in ("Reasoning", "Recommendations", "Evaluation", "Knowledge base", "Settings"):
        page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
        page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
        wait_idle(page)
    page.screenshot(path=str(artifacts / "03-settings.png"), full_page=True)

    assert requests, "no request was recorded"
    left = off_machine(requests + sockets)
    assert not left, f"requests left localhost: {left}"


def test_hostile_titles_never_execute(hostile_server: StreamlitServer, browser_page: Any,
                                      artifacts: Path) -> None:
    page = browser_page
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_app(page, hostile_server)
    frame = open_explorer(page)

    # Find the user through the movie search: the options show the titles as text.
    page.get_by_text("By a movie they watched").click()
    wait_idle(page)
    movie = page.get_by_role("combobox", name="Movie", exact=True)
    movie.click()
    page.keyboard.type("<script>")
    options = page.get_by_role("option")
    options.first.wait_for()
    assert {SCRIPT_TITLE, CLOSE_SCRIPT_TITLE} <= set(options.all_inner_texts())  # as text
    page.get_by_role("option", name=SCRIPT_TITLE, exact=True).click()
    wait_idle(page)
    assert movie.input_value() == SCRIPT_TITLE
    assert page.get_by_role("combobox", name=re.compile(r"^Users who watched it")).input_value() == "u1"
    frame = graph_frame(page)

    tooltips = [hover_node(page, frame, node_id)
                for node_id in frame.evaluate("() => window.rrNodes.getIds()")]
    shown = "\n".join(tooltips)
    for title in (*HOSTILE_TITLES, HOSTILE_GENRE):
        assert title in shown, f"{title!r} is not shown as text in a tooltip"
    assert IMG_TITLE in tooltips[-1] and "never seen by the models" in tooltips[-1].lower()
    # The tooltips hold text only: no element came out of the data.
    assert frame.locator("div.vis-tooltip img, div.vis-tooltip script, div.vis-tooltip svg, "
                         "div.vis-tooltip a, #rr-legend svg").count() == 0
    centre = frame.evaluate(NODE_CENTRE_JS, "next")
    box = page.locator(GRAPH_IFRAME).bounding_box()
    page.mouse.move(box["x"] + centre["x"], box["y"] + centre["y"])
    frame.locator("div.vis-tooltip").wait_for(state="visible")
    page.screenshot(path=str(artifacts / "05-xss-session-explorer.png"), full_page=True)

    assert page.evaluate("() => typeof window.__xss") == "undefined"
    for each in page.frames:
        assert each.evaluate("() => typeof window.__xss") == "undefined", each.url
    assert not dialogs
    # <img src=x> would have fetched /x had it ever become an element.
    assert not [url for url in requests if urlparse(url).path.rstrip("/").endswith("/x")]
