"""Shared Playwright helpers for the browser tests: idle waits, vis-network geometry, origins."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

IDLE = "() => !document.querySelector(\"[data-test-script-state='running']\")"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
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
