"""Shared Playwright helpers for the browser tests: idle waits, vis-network geometry, origins,
the Reasoning page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from models.data import default_data_dir
from reasonrec.bench_app import FUSED_TEXT

if TYPE_CHECKING:
    from tests.browser.conftest import StreamlitServer

IDLE = "() => !document.querySelector(\"[data-test-script-state='running']\")"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
GRAPH_IFRAME = ".st-key-reasoning-graph iframe"
# The Recommendations page's two lists (FUSED_TEXT: the fused list's text, "" mid-rerun).
BASE = ".st-key-effect-base-list"
FUSED = ".st-key-effect-fused-list"
# A vis-network node's centre in the page, from inside the graph's iframe.
NODE_CENTRE_JS = """(id) => {
  const p = window.rrNetwork.getPositions([id])[id];
  const d = window.rrNetwork.canvasToDOM(p);
  const r = document.getElementById('mynetwork').getBoundingClientRect();
  return {x: r.left + d.x, y: r.top + d.y};
}"""


def wait_idle(page: Any, timeout_ms: int = 60_000) -> None:
    """The app is drawn and no script run is in progress (a short settle covers the
    moment between a widget change and the server reporting the rerun)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    time.sleep(0.3)
    page.wait_for_function(IDLE, timeout=timeout_ms)


def off_machine(urls: list[str]) -> list[str]:
    """The URLs that would leave this machine (data:, blob: and about: never do)."""
    return [url for url in urls if not url.startswith(("data:", "blob:", "about:"))
            and urlparse(url).hostname not in LOCAL_HOSTS]


def share_item_vectors(data_dir: Path) -> None:
    """The app's embeddings folder -> the shared cache (building it cold takes ~80 s)."""
    target = data_dir / "reasoning" / "embeddings"
    target.parent.mkdir(parents=True, exist_ok=True)
    shared = default_data_dir() / "reasoning" / "embeddings"
    shared.mkdir(parents=True, exist_ok=True)   # a fresh machine: the first build fills it
    target.symlink_to(shared, target_is_directory=True)


def open_reasoning(page: Any, server: StreamlitServer) -> None:
    page.goto(server.url)
    page.wait_for_selector("[data-testid='stSidebarNavLink']", timeout=90_000)
    wait_idle(page, 90_000)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Reasoning").click()
    page.get_by_role("heading", name="Reasoning").wait_for(timeout=60_000)
    wait_idle(page)


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the searchable selectbox labelled ``label``."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)
    assert box.input_value() == option


def choose_user(page: Any, user: str) -> None:
    """The Reasoning page's user picker."""
    choose(page, "User id", user)


def graph_frame(page: Any) -> Any:
    page.wait_for_selector(GRAPH_IFRAME, timeout=60_000)
    page.frame_locator(GRAPH_IFRAME).locator("#mynetwork canvas").wait_for(timeout=30_000)
    frame = page.locator(GRAPH_IFRAME).element_handle().content_frame()
    frame.wait_for_function("() => window.rrNetwork !== undefined", timeout=30_000)
    return frame


def switch_chain_off(page: Any, chain: str | None = None, timeout_ms: int = 60_000) -> None:
    """On the Recommendations page, switch off ``chain`` (by its option label; default the
    first chain) and wait until the fused top-k shows the removal."""
    wait_idle(page)   # the page may still be drawing the explanation card below
    box = page.get_by_role("combobox", name="Chains off", exact=True)
    box.scroll_into_view_if_needed()
    box.click()
    options = page.get_by_role("option", name=chain) if chain else page.get_by_role("option")
    options.first.click()
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => ({FUSED_TEXT}).includes('after the removal')",
                           timeout=timeout_ms)
    wait_idle(page)
