"""Real-browser fixtures: ``streamlit run`` on a free localhost port, Debian Chromium via Playwright.

Never ``playwright install``: the browser is the system's /usr/bin/chromium, and
the tests are skipped with a reason when it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.app.hostile_data import write_config, write_hostile_dataset

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_streamlit(config: Path, workdir: Path) -> StreamlitServer:
    """Start the app on 127.0.0.1 and wait until /_stcore/health says ok."""
    port = free_port()
    log = workdir / f"streamlit-{port}.log"
    env = {**os.environ, "REASONREC_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py",
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = StreamlitServer(f"http://127.0.0.1:{port}", port, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as reply:
                if reply.read().decode().strip() == "ok":
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stop_streamlit(server)
    pytest.fail(f"streamlit did not become healthy in {START_TIMEOUT_S}s:\n{server.log_tail()}")


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
