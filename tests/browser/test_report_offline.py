"""The stakeholder report in Debian Chromium with the network blocked.

``reasonrec report`` writes the report of a sampled user (real ml-100k, the
shipped graphs and runs); Chromium opens the file with every request that is
not the file itself refused. It must render the first page (the user, the top
5 with their sentences, the true film's ranks, what the reasoning changed), run
no script, log no console error, request nothing, and show no internal word.
Screenshots go to test-artifacts/ (report-offline-first-page.png, -full.png).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)
from tests.reasonrec.report_checks import invoke, jargon_found, report_cli_args

pytestmark = [pytest.mark.slow, pytest.mark.browser]
USER = "22"     # the first user of the fused models' sample: a shipped graph


@pytest.fixture(scope="module")
def report(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-offline")
    out = folder / f"report-{USER}.html"
    code, _, err = invoke(*report_cli_args(ml100k_dir, folder), "report", "--user", USER,
                          "--out", str(out))
    assert code == 0, err
    return out


def test_report_opens_offline_and_renders_the_first_page(chromium: Any, report: Path,
                                                         artifacts: Path) -> None:
    document = report.read_text("utf-8")
    first_page = document.split("</section>", 1)[0]
    # the top 5 as the file holds them: title and sentence per row
    rows = [(html.unescape(t), html.unescape(s)) for t, s in re.findall(
        r"<tr><td>\d+</td><td><b>(.*?)</b></td><td>(.*?)</td>", first_page)]
    assert len(rows) == 5

    context = chromium.new_context(viewport={"width": 1280, "height": 1000},
                                   java_script_enabled=True)
    requested: list[str] = []
    console: list[str] = []

    def only_the_file(route: Any) -> None:
        requested.append(route.request.url)
        if route.request.url == report.as_uri():
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_file)
    context.set_offline(True)
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        first = page.locator("section.first")
        text = first.inner_text()
        assert f"Recommendations for user {USER}" in text
        assert "What the reasoning changed" in text and "actually watched next" in text
        for title, sentence in rows:
            cell = first.get_by_role("cell", name=title, exact=True)
            assert cell.is_visible(), title
            assert sentence in text
        assert page.get_by_role("heading", name="Details", exact=True).is_visible()
        # the graph and the rank shift, then a deletion curve for each item that has one (none
        # when no path of the item moves its rank)
        curves = document.count("<summary>Deletion curve</summary>")
        assert page.locator("svg").count() >= 2 + curves
        assert page.evaluate("document.scripts.length") == 0
        assert jargon_found(page.locator("body").inner_text()) == {}
        page.screenshot(path=str(artifacts / "report-offline-first-page.png"))
        page.screenshot(path=str(artifacts / "report-offline-full.png"), full_page=True)
    finally:
        context.close()
    assert requested == [report.as_uri()], requested
    assert console == [], console
