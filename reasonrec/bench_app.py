"""``reasonrec bench app``: how fast the studio feels in a real browser.

Starts ``streamlit run app/main.py`` on a free localhost port with the given
config, drives Debian's Chromium through Playwright and measures, against #5's
bars:

* **cold start**: from launching the server to the first page being
  interactive (the app drawn, no script running) — bar 15 s;
* **page switch**: clicking a page in the sidebar until that page is drawn,
  for every page, twice: the first visit (which may load a model) and the
  second (what an analyst feels moving around) — bar 1 s on the second;
* **counterfactual toggle**: switching a chain off on the Recommendations
  page until the fused top-k is redrawn — bar 1 s.

Times are wall-clock seconds on this machine, with its current load recorded.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BARS = {"cold_start_seconds": 15.0, "page_switch_seconds": 1.0, "toggle_seconds": 1.0}
#: Sidebar titles in app/main.py, visited in this order (and back to the first).
PAGES = ("Session explorer", "Reasoning", "Recommendations", "Evaluation", "Knowledge base",
         "Settings")
Log = Callable[[str], None]
# The fused list's text on the Recommendations page ("" while a rerun has it detached).
FUSED_TEXT = "document.querySelector('.st-key-effect-fused-list')?.innerText ?? ''"


class AppBenchError(RuntimeError):
    """The app or the browser could not be started; the message says why."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_streamlit(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``streamlit run app/main.py`` headless on 127.0.0.1:``port``, its output in ``log``."""
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless",
           "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float,
                 poll_s: float = 0.1) -> None:
    """Until ``url``'s ``/_stcore/health`` says ok.

    Raises:
        AppBenchError: the server exited, or was not healthy within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AppBenchError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AppBenchError(f"streamlit did not become healthy in {timeout_s:g}s")
        time.sleep(poll_s)


def _wait_idle(page: Any, timeout_ms: int) -> None:
    """Until the app is drawn and no script run is in progress."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-test-script-state='running']\")",
        timeout=timeout_ms, polling=50)


def _switch(page: Any, title: str, timeout_ms: int) -> float:
    """Seconds from clicking ``title`` in the sidebar until its page is drawn and idle."""
    link = page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first
    started = time.perf_counter()
    link.click()
    # The rerun starts asynchronously: wait for this page's link to become the
    # active one, then for the script run to finish.
    page.wait_for_function(
        "(title) => [...document.querySelectorAll(\"[data-testid='stSidebarNavLink']\")]"
        ".some(a => a.getAttribute('aria-current') === 'page' && a.innerText.trim() === title)",
        arg=title, timeout=timeout_ms, polling=50)
    _wait_idle(page, timeout_ms)
    return time.perf_counter() - started


def bench_app(config: Path | None = None, user: str | None = None, log: Log = lambda _: None,
              timeout_s: float = 600.0, toggle: bool = True) -> dict[str, Any]:
    """Run the browser bench and return its report (see the module docstring).

    Args:
        config: the studio TOML the app reads (default: ``$REASONREC_CONFIG`` or the defaults).
        user: whose chains are toggled; it needs a reasoning graph (e.g. a user of the
            fused models' sample).
    """
    if not CHROMIUM.exists():
        raise AppBenchError(f"{CHROMIUM} is missing: install Debian's chromium "
                            "(`make chromium`); never `playwright install`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise AppBenchError("playwright is not installed: run `make setup`") from exc
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if config is not None:
        env["REASONREC_CONFIG"] = str(Path(config).resolve())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="reasonrec-bench-app-") as folder:
        server_log = Path(folder) / "streamlit.log"
        started = time.perf_counter()
        server = launch_streamlit(port, env, server_log)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_healthy(url, server, timeout_s)
            except AppBenchError as exc:
                raise AppBenchError(f"{exc}: {server_log.read_text(errors='replace')[-2000:]}") \
                    from None
            healthy = time.perf_counter() - started
            timeout_ms = int(timeout_s * 1000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                     args=CHROMIUM_ARGS)
                try:
                    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
                    page.goto(url)
                    _wait_idle(page, timeout_ms)
                    cold = time.perf_counter() - started
                    log(f"cold start {cold:.2f} s (server healthy after {healthy:.2f} s)")
                    visits: dict[str, list[float]] = {title: [] for title in PAGES}
                    for round_ in range(2):
                        for title in (*PAGES[1:], PAGES[0]):
                            seconds = _switch(page, title, timeout_ms)
                            visits[title].append(seconds)
                            log(f"round {round_ + 1}: {title} in {seconds:.2f} s")
                    toggles = _toggle_times(page, user, timeout_ms, log) if toggle else []
                finally:
                    browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    warm = [v[1] for v in visits.values()]
    return {
        "benchmark": "app",
        "environment": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "load_average_before": [round(x, 2) for x in load_before],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "cold_start_seconds": round(cold, 3),
        "server_healthy_seconds": round(healthy, 3),
        "page_switch_seconds": {title: {"first_visit": round(v[0], 3), "again": round(v[1], 3)}
                                for title, v in visits.items()},
        "page_switch_again_max": round(max(warm), 3),
        "page_switch_again_median": round(statistics.median(warm), 3),
        "toggle_user": user,
        # the bar: until the fused top-k shows the change; the rest of the page follows
        "toggle_seconds": [round(t, 3) for t, _ in toggles],
        "toggle_rerun_done_seconds": [round(t, 3) for _, t in toggles],
        "bars": {
            "cold_start_seconds": {"bar": f"<= {BARS['cold_start_seconds']} s", "value": round(cold, 3),
                                   "met": cold <= BARS["cold_start_seconds"]},
            "page_switch_seconds": {"bar": f"<= {BARS['page_switch_seconds']} s (every page, "
                                           "second visit)", "value": round(max(warm), 3),
                                    "met": max(warm) <= BARS["page_switch_seconds"]},
            "toggle_seconds": {"bar": f"<= {BARS['toggle_seconds']} s",
                               "value": round(max(t for t, _ in toggles), 3) if toggles else None,
                               "met": bool(toggles)
                               and max(t for t, _ in toggles) <= BARS["toggle_seconds"]},
        },
    }


def _toggle_times(page: Any, user: str | None, timeout_ms: int,
                  log: Log) -> list[tuple[float, float]]:
    """Per chain (up to 3): seconds from switching it off until the fused top-k is redrawn,
    and until the whole rerun (chart, explanation card) has finished.

    Each toggle starts from the original graph ("Restore original" in between),
    on ``user``'s Recommendations page; no user or no chain: no toggle.
    """
    _switch(page, "Recommendations", timeout_ms)
    if user is not None:
        box = page.get_by_role("combobox", name="User", exact=True)
        box.click()
        page.keyboard.type(user)
        page.get_by_role("option", name=user, exact=True).click()
        _wait_idle(page, timeout_ms)
    chains = page.get_by_role("combobox", name="Chains off", exact=True)
    try:  # the user's rerun may start after the idle check: give the switches time to appear
        chains.first.wait_for(timeout=min(timeout_ms, 30_000))
    except Exception:  # playwright's TimeoutError: this user has no chains
        pass
    if chains.count() == 0:
        log("no chain switches on the Recommendations page: no toggle timed")
        return []
    times: list[tuple[float, float]] = []
    for index in range(3):
        # In view first: the switches sit below the fold, and a click that has to scroll the
        # page there opens the list only for it to close again (then nothing was timed).
        chains.scroll_into_view_if_needed()
        chains.click()
        options = page.get_by_role("option")
        try:
            options.first.wait_for(timeout=5_000)
        except Exception:  # playwright's TimeoutError: the list stayed empty
            pass
        if options.count() <= index:
            page.keyboard.press("Escape")
            break
        started = time.perf_counter()
        options.nth(index).click()
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => ({FUSED_TEXT}).includes('after the removal')",
                               timeout=timeout_ms, polling=20)
        top_k = time.perf_counter() - started
        _wait_idle(page, timeout_ms)
        times.append((top_k, time.perf_counter() - started))
        log(f"toggle {index + 1}: top-k in {top_k:.2f} s, rerun done in {times[-1][1]:.2f} s")
        page.get_by_role("button", name="Restore original").click()
        page.wait_for_function(f"() => !({FUSED_TEXT}).includes('after the removal')",
                               timeout=timeout_ms, polling=20)
        _wait_idle(page, timeout_ms)
    return times
