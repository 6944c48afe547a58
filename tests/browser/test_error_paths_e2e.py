"""The app's error paths in Debian Chromium (issue #16): an HTTP server that is down gives an
``st.error`` saying what to do next and a failed status, never Streamlit's exception box;
Settings -> Reset resets the form; and there is no "Deploy" button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reasonrec.bench_app import free_port
from tests.browser.conftest import StreamlitServer
from tests.browser.page_helpers import choose_user, open_reasoning, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

EXCEPTION_BOX = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"


def open_settings(page: Any) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Settings").click()
    page.get_by_role("heading", name="Settings").wait_for(timeout=60_000)
    wait_idle(page)


def test_http_server_down_then_reset(ml100k_server: StreamlitServer, browser_page: Any,
                                     artifacts: Path) -> None:
    page = browser_page
    url = f"http://127.0.0.1:{free_port()}/v1"      # nothing listens there
    open_reasoning(page, ml100k_server)
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0   # toolbarMode minimal

    open_settings(page)
    page.get_by_text("OpenAI-compatible HTTP server").click()
    page.get_by_label("Server URL (HTTP backend)").fill(url)
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Applied to this session.").wait_for()
    wait_idle(page)

    page.get_by_test_id("stSidebarNavLink").filter(has_text="Reasoning").click()
    page.get_by_role("heading", name="Reasoning").wait_for(timeout=60_000)
    wait_idle(page)
    choose_user(page, "13")
    page.get_by_role("button", name="Build reasoning graph").click()
    error = page.locator(ERROR).filter(has_text="did not answer")
    error.wait_for(timeout=120_000)
    wait_idle(page)
    page.screenshot(path=str(artifacts / "30-http-server-down.png"), full_page=True)
    text = error.inner_text()
    assert url in text and "Start the server" in text and "Settings" in text
    assert page.get_by_text("The LLM could not be loaded").count() == 1   # status failed
    assert page.get_by_text("Building the reasoning graph").count() == 0
    assert page.locator(EXCEPTION_BOX).count() == 0

    open_settings(page)
    page.get_by_role("button", name="Reset to the config file").click()
    page.get_by_text("Back to the config file's settings.").wait_for()
    wait_idle(page)
    assert page.get_by_role("radio", name="in-process llama.cpp").is_checked()
    assert page.get_by_label("Server URL (HTTP backend)").input_value() != url
    assert page.locator(EXCEPTION_BOX).count() == 0
