"""The Session explorer shows more than its table (#18 "Readable graphs"), in Chromium on the real
ml-100k: the whole history as sessions under the stated gap rule, a title search whose films are
highlighted with their number and session, a jump to the window before a found film, and a
window graph whose labels do not overlap at the default zoom. Screenshot:
test-artifacts/session-explorer-search.png.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.graph_html import NEXT_ITEM_ID
from tests.browser.conftest import StreamlitServer
from tests.browser.page_helpers import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

USER, FILMS = "69", 40    # 65 films in 4 sessions (15, 23, 12, 15) at the 30-minute gap
SESSION_GRAPH = ".st-key-session-graph iframe"
# Every drawn label's box, and every node's shape box, in canvas coordinates (vis-network).
BOXES_JS = """() => Object.values(window.rrNetwork.body.nodes).map(n => ({
  id: n.id, label: n.options.label || "",
  text: n.labelModule.size, shape: n.shape.boundingBox}))"""


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["left"] < b["left"] + b["width"] and b["left"] < a["left"] + a["width"]
            and a["top"] < b["top"] + b["height"] and b["top"] < a["top"] + a["height"])


def shape_box(box: dict[str, float]) -> dict[str, float]:
    return {"left": box["left"], "top": box["top"], "width": box["right"] - box["left"],
            "height": box["bottom"] - box["top"]}


def label_collisions(page: Any) -> list[tuple[str, str]]:
    """Pairs of nodes whose label overlaps the other's label or shape."""
    page.wait_for_selector(SESSION_GRAPH)
    frame = page.locator(SESSION_GRAPH).element_handle().content_frame()
    frame.wait_for_function("() => window.rrNetwork !== undefined")
    nodes = frame.evaluate(BOXES_JS)
    assert len(nodes) >= 10 and all(n["label"] for n in nodes)
    found = []
    for a in nodes:
        for b in nodes:
            if a["id"] == b["id"]:
                continue
            if overlaps(a["text"], b["text"]) or overlaps(a["text"], shape_box(b["shape"])):
                found.append((a["label"], b["label"]))
    return found


def chips(page: Any, selector: str) -> list[str]:
    return page.locator(f".st-key-explorer-sessions {selector}").evaluate_all(
        "cells => cells.map(c => c.dataset.film)")


def test_history_by_session_with_a_search_and_readable_labels(
        ml100k_server: StreamlitServer, browser_page: Any, artifacts: Any) -> None:
    page = browser_page
    page.set_default_timeout(90_000)
    page.goto(f"{ml100k_server.url}/?user={USER}&step={FILMS}")
    page.locator(".st-key-explorer-sessions .rr-timeline").wait_for()
    wait_idle(page)
    assert label_collisions(page) == []

    text = page.locator("[data-testid='stMain']").inner_text()
    assert "A new session starts after 30 minutes without a rating" in text
    assert f"User {USER}'s 65 films form 4 sessions" in text
    heads = page.locator(".st-key-explorer-sessions .rr-session-head").all_inner_texts()
    assert [re.search(r"(\d+) films", h).group(1) for h in heads] == ["15", "23", "12", "15"]
    assert chips(page, ".rr-window") == [str(n) for n in range(31, 41)]
    assert chips(page, ".rr-next") == ["41"]

    search = page.get_by_role("textbox", name="Find a film in this history")
    search.fill("star")
    search.press("Enter")
    page.locator(".st-key-explorer-sessions .rr-hit").first.wait_for()
    wait_idle(page)
    assert chips(page, ".rr-hit") == ["16", "25", "34"]
    hit = page.locator(".st-key-explorer-sessions .rr-hit").first
    assert "Star Wars" in hit.inner_text()
    assert hit.evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(255, 229, 138)"
    found = page.locator(".st-key-explorer-search").inner_text()
    assert "Star Wars is film 16 of 65, the 1st of session 2 (23 films)." in found
    assert "Star Trek: First Contact is film 34 of 65, the 19th of session 2" in found
    assert "It is in the current window." in found
    page.screenshot(path=str(artifacts / "session-explorer-search.png"), full_page=True)

    # the window before Star Wars: it becomes the true next film, on the shared scale
    page.get_by_role("button", name="Window before it").first.click()
    page.wait_for_function("() => location.search.includes('step=15')")
    wait_idle(page)
    assert page.locator("[data-testid='stSliderThumbValue']").first.inner_text() == \
        "after 15 films"
    assert chips(page, ".rr-next") == ["16"] and "16" in chips(page, ".rr-hit")
    assert label_collisions(page) == []
    frame = page.locator(SESSION_GRAPH).element_handle().content_frame()
    assert "Star Wars" in frame.evaluate(
        "(id) => window.rrNetwork.body.nodes[id].options.label", NEXT_ITEM_ID)
