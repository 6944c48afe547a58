"""Two browser sessions build reasoning graphs on the real LLM at the same time.

Issue #5's concurrency bar: the LLM is loaded once per process (``st.cache_resource``)
and its calls are serialized, so both builds finish, and neither session sees the
other's user, window or graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.graph_html import short_label
from app.components.reasoning_view import LABEL_CHARS
from models.data import load_dataset
from reasoning.builder import session_window
from reasoning.store import GraphStore
from tests.app.hostile_data import write_config
from tests.browser.conftest import StreamlitServer, start_streamlit, stop_streamlit
from tests.browser.page_helpers import (
    choose_user,
    graph_frame,
    open_reasoning,
    share_item_vectors,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(600)]

USERS = ("8", "10")   # outside the shipped 300-user sample: no graph until built
WINDOW = 5   # l_tru: short windows keep two serialized builds inside CI's budget


@pytest.fixture(scope="module")
def fresh_server(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[StreamlitServer, Path]]:
    """The app on ml-100k with an empty graph store and knowledge base."""
    workdir = tmp_path_factory.mktemp("app-concurrent")
    share_item_vectors(workdir / "data")
    config = write_config(workdir / "studio.toml", ml100k_dir, workdir / "data",
                          extra=f"[reasoning]\nl_tru = {WINDOW}\n")
    server = start_streamlit(config, workdir)
    yield server, workdir / "data"
    stop_streamlit(server)


def gguf_mappings(pid: int) -> int:
    """Memory maps of a .gguf file in the server: llama.cpp maps its model once per load."""
    with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
        return sum(1 for line in maps if line.rstrip().endswith(".gguf"))


def session_labels(page: Any, n: int) -> list[str]:
    frame = graph_frame(page)
    return [frame.evaluate("(id) => window.rrNodes.get(id).label", f"s{i}") for i in range(n)]


def test_two_sessions_build_at_once(fresh_server: tuple[StreamlitServer, Path], chromium: Any,
                                    ml100k_dir: Path, artifacts: Path) -> None:
    server, data_dir = fresh_server
    dataset = load_dataset(ml100k_dir)
    windows = {user: session_window(dataset, user, WINDOW) for user in USERS}
    assert windows[USERS[0]].items != windows[USERS[1]].items

    contexts = [chromium.new_context(viewport={"width": 1440, "height": 1000}) for _ in USERS]
    try:
        pages = [context.new_page() for context in contexts]
        for page, user in zip(pages, USERS):
            page.set_default_timeout(60_000)
            open_reasoning(page, server)
            choose_user(page, user)
            page.get_by_text("No reasoning graph for user").wait_for()
        # both builds start before either can finish
        for page in pages:
            page.get_by_role("button", name="Build reasoning graph").click()
        # both started (or already finished: a quick build may beat this check); a fresh
        # machine first builds the item vectors (minutes)
        started = re.compile("Building the reasoning graph on the local LLM|"
                             "Reasoning graph built in")
        for page in pages:
            page.get_by_text(started).first.wait_for(timeout=300_000)
        for page in pages:
            page.get_by_text("Reasoning graph built in").wait_for(timeout=480_000)
            wait_idle(page)
        for index, page in enumerate(pages):
            page.screenshot(path=str(artifacts / f"16-concurrent-session-{index + 1}.png"),
                            full_page=True)

        # no state leaked: each session still shows its own user and its own window
        store = GraphStore(data_dir / "reasoning" / "graphs")
        for page, user in zip(pages, USERS):
            box = page.get_by_role("combobox", name="User id", exact=True)
            assert box.input_value() == user
            items = windows[user].items
            expected = [f"{step + 1}. {short_label(item.display_name, LABEL_CHARS)}"
                        for step, item in enumerate(items)]
            assert session_labels(page, len(items)) == expected
            stored = store.load(user)
            assert stored is not None and str(stored.graph["user"]) == user
            assert stored.graph["window_item_ids"] == [item.item_id for item in items]
        # one LLM for the two sessions
        assert gguf_mappings(server.process.pid) == 1
    finally:
        for context in contexts:
            context.close()
