"""Real-browser fixtures: ``streamlit run`` on a free localhost port, Debian Chromium via Playwright.

Never ``playwright install``: the browser is the system's /usr/bin/chromium, and
the tests are skipped with a reason when it is missing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reasonrec.bench_app import (CHROMIUM, CHROMIUM_ARGS, AppBenchError, free_port, launch_streamlit,
                                 wait_healthy)
from tests.app.hostile_data import write_config, write_hostile_dataset

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT_S = 60


@dataclass
class StreamlitServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_streamlit(config: Path, workdir: Path) -> StreamlitServer:
    """Start the app on 127.0.0.1 and wait until /_stcore/health says ok."""
    port = free_port()
    log = workdir / f"streamlit-{port}.log"
    env = {**os.environ, "REASONREC_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    server = StreamlitServer(f"http://127.0.0.1:{port}", port, launch_streamlit(port, env, log), log)
    try:
        wait_healthy(server.url, server.process, START_TIMEOUT_S, poll_s=0.3)
    except AppBenchError as exc:
        stop_streamlit(server)
        pytest.fail(f"{exc}:\n{server.log_tail()}")
    return server


def stop_streamlit(server: StreamlitServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def ml100k_server(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[StreamlitServer]:
    """The app on the real ml-100k (caches in a temp data_dir)."""
    workdir = tmp_path_factory.mktemp("app-ml100k")
    config = write_config(workdir / "studio.toml", ml100k_dir, workdir / "data")
    server = start_streamlit(config, workdir)
    yield server
    stop_streamlit(server)


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitServer]:
    """The app on a tiny dataset whose titles try to inject script."""
    workdir = tmp_path_factory.mktemp("app-hostile")
    data = write_hostile_dataset(workdir / "hostile")
    config = write_config(workdir / "studio.toml", data, workdir / "data")
    server = start_streamlit(config, workdir)
    yield server
    stop_streamlit(server)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (sync API), headless."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium` or "
                    "`apt-get install -y chromium`); never `playwright install`")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")
    manager = sync_api.sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        manager.stop()


@pytest.fixture()
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page (one browser session of the app)."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the repository root (gitignored): screenshots go here."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
