"""The stakeholder report on real ml-100k with the shipped graphs and runs.

``reasonrec report`` (run in-process through the CLI's ``main()``) and the app's
export (``app.report.export_input`` on a ``FusionHandle`` wired as
``app.state.get_fusion`` wires it) must write the same file; its first page holds
the explainer's own sentences; it runs nothing, loads nothing and shows no
internal word; hostile titles and LLM texts appear escaped only.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.report import export_input
from app.state import FusionHandle
from models.explain import Explainer
from models.explain_schema import ItemRef
from models.graph_data import reasoning_elements
from models.runs import shipped_runs_dir
from reasonrec.config import load_config
from reasonrec.fusion import workspace
from reasonrec.report import (CounterfactualState, RankChange, ReasoningChange, ReportInput,
                              ReportNotOfflineError, check_report_offline, read_report_json,
                              report_html, report_json)
from reasonrec.report_sections import ordinal
from reasonrec.studio import Studio
from tests.app.hostile_data import CLOSE_SCRIPT_TITLE, IMG_TITLE, LINK_TITLE, SCRIPT_TITLE
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

#: The shipped fused run's id (``assets/runs``): the report must reuse it, not train one.
SHIPPED_FUSED_RUN = next((shipped_runs_dir() / "ml-100k" / "fusion-llmrg").iterdir()).name
from tests.reasonrec.report_checks import (HANDLER, REMOTE, invoke, jargon_found,
                                           report_cli_args, visible_text)

pytestmark = pytest.mark.slow
CREATED = re.compile(r"created \d{4}-\d\d-\d\d \d\d:\d\d UTC")


@pytest.fixture(scope="module")
def cli_args(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Default settings (shipped graphs and runs) on the real data, caches in a temp data dir."""
    return report_cli_args(ml100k_dir, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def handle(cli_args: list[str]) -> FusionHandle:
    """The app's fused model, wired as ``app.state.get_fusion`` wires it."""
    config = load_config(Path(cli_args[1]), {"data": {"path": cli_args[3],
                                                      "data_dir": cli_args[5]}})
    studio = Studio(config)
    ws = workspace(studio, config.fusion)
    run = ws.fused(config.fusion.variant)
    assert run.directory.name == SHIPPED_FUSED_RUN, "the shipped fused run is reused"
    return FusionHandle(ws, run, ws.explainer(run))


@pytest.fixture(scope="module")
def user(handle: FusionHandle) -> str:
    return handle.workspace.user_graphs[0].user_id    # a sampled user: a shipped graph


def app_export(handle: FusionHandle, user: str, step: int | None,
               state: CounterfactualState | None = None) -> ReportInput:
    """What the Recommendations page's "Download HTML report" builds for this user and step."""
    explainer = handle.explainer
    user_graph = explainer.user_graph(user)
    point = explainer.point(user_graph, user_graph.steps - 1 if step is None else step)
    return export_input(handle, point, state or CounterfactualState([], [], []))


@pytest.mark.parametrize("step", [None, 4])
def test_cli_and_app_export_write_the_same_file(cli_args: list[str], handle: FusionHandle,
                                                user: str, step: int | None,
                                                tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, stdout, err = invoke(*cli_args, "report", "--user", user, "--out", str(out),
                               *([] if step is None else ["--step", str(step)]))
    assert code == 0, err
    assert stdout.strip() == str(out)
    from_cli = out.read_text("utf-8")
    from_app = report_html(app_export(handle, user, step))
    assert len(CREATED.findall(from_cli)) == 2
    assert CREATED.sub("created T", from_cli) == CREATED.sub("created T", from_app)
    assert not list(tmp_path.glob(".*.tmp")), "the atomic writer left a temporary file"


def test_first_page_holds_user_top5_sentences_target_and_change(handle: FusionHandle,
                                                                user: str) -> None:
    data = app_export(handle, user, None)
    document = report_html(data)
    first, details = document.split("</section>", 1)
    assert f"Recommendations for user {user}" in first
    assert "<h1>Details</h1>" in details and "<h1>Details</h1>" not in first
    # the top 5, in order, each with the explainer's own sentence (explained afresh here)
    fresh = handle.explainer.explain(user)
    rows = re.findall(r"<tr><td>(\d+)</td><td><b>(.*?)</b></td><td>(.*?)</td>", first)
    assert [(int(r), html.unescape(t), html.unescape(s)) for r, t, s in rows] == \
        [(i.rank, i.title, i.summary) for i in fresh.items[:5]]
    assert all(i.summary for i in fresh.items[:5])
    p = fresh.point
    assert (f"<b>{html.escape(p.target.title)}</b>" in first
            and f"ranks <b>{ordinal(p.target_rank_base)}</b> by the base model and "
                f"<b>{ordinal(p.target_rank_fused)}</b> with reasoning" in first)
    assert "What the reasoning changed" in first
    for size in (5, 10):
        assert f"<b>Top {size}:</b>" in first
        for change in data.reasoning.entered[size] + data.reasoning.left[size]:
            assert html.escape(change.item.title) in first


def test_reasoning_change_matches_the_explainers_counterfactual(handle: FusionHandle,
                                                               user: str) -> None:
    """Removing every chain and interest (the explainer's own counterfactual at its k = 10):
    what enters is what the reasoning pushed out, what leaves is what it brought in."""
    data = app_export(handle, user, None)
    explainer: Explainer = handle.explainer
    assert explainer.k == 10
    point = explainer.point(user)
    cf = explainer.counterfactual(point, explainer.all_reasoning(point))
    change = data.reasoning
    assert {i.index for i in cf.entered} == {c.item.index for c in change.left[10]}
    assert {i.index for i in cf.left} == {c.item.index for c in change.entered[10]}
    after = {r.index: r.rank for r in cf.top_k}
    for c in change.entered[5] + change.entered[10]:
        assert c.rank_with < c.rank_without
    for c in change.left[10]:
        assert after[c.item.index] == c.rank_without <= 10 < c.rank_with
    # the items' own "without reasoning" effects agree with the change's ranks
    for item in data.explanation.items:
        for c in change.entered[10]:
            if c.item.index == item.index:
                assert item.without_reasoning.rank_after == c.rank_without
    # "reordered" is the counterfactual's own order against the fused one, and the page
    # says "changes nothing" exactly when the order is the same
    fused_order = [r.index for r in explainer.top_k(point).fused]
    assert change.reordered[10] == ([r.index for r in cf.top_k] != fused_order)
    html_text = report_html(data)
    unchanged = "in the same order: the reasoning changes nothing here"
    same = [n for n in change.reordered if not (change.entered[n] or change.left[n]
                                                 or change.reordered[n])]
    assert (unchanged in html_text) == bool(same)


def test_report_runs_nothing_loads_nothing_and_shows_no_jargon(handle: FusionHandle,
                                                               user: str) -> None:
    chains, _ = reasoning_elements(handle.explainer.point(user).prefix)
    data = app_export(handle, user, None, CounterfactualState(chains=chains[:1]))
    document = report_html(data)
    assert "<script" not in document.lower()
    assert not REMOTE.search(document) and not HANDLER.search(document)
    assert "Content-Security-Policy" in document and "default-src 'none'" in document
    assert jargon_found(visible_text(document)) == {}
    # the switched-off chain is named by its intent, not its id
    assert "Switched off: chain " in document and "After removal" in document
    prov = re.search(r"<h2>Provenance</h2><p>(.*?)</p>", document).group(1)
    assert "SR-GNN, trained on 5 Dec 2026 (seed 2020)" in prov
    assert "on 300 users" in prov and "SmolLM2-135M" in prov
    check_report_offline(document)
    with pytest.raises(ReportNotOfflineError):
        check_report_offline(document.replace("</body>", '<img src="https://cdn.example/x">'))


def test_hostile_titles_and_llm_texts_appear_escaped_only(handle: FusionHandle,
                                                          user: str) -> None:
    chains, _ = reasoning_elements(handle.explainer.point(user).prefix)
    data = app_export(handle, user, None, CounterfactualState(chains=chains[:1]))
    payloads = [SCRIPT_TITLE, IMG_TITLE, CLOSE_SCRIPT_TITLE, LINK_TITLE]
    counter = iter(range(10**6))

    def poison(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: poison(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v, key) for v in value]
        if key in {"title", "label", "reason", "intent", "summary", "text", "interest"} \
                and isinstance(value, str):
            return payloads[next(counter) % len(payloads)]
        return value

    raw = data.explanation.model_dump(by_alias=True)
    hostile = type(data.explanation).model_validate(poison(raw))
    graph = data.graph.copy()
    for i, (_, a) in enumerate(graph.nodes(data=True)):
        for key in ("title", "intent", "reason"):
            if key in a:
                a[key] = payloads[i % len(payloads)]
    for i, (_, _, a) in enumerate(graph.edges(data=True)):
        if "reason" in a:
            a["reason"] = payloads[i % len(payloads)]
    graph.graph["chains"] = [c.model_copy(update={"intent": SCRIPT_TITLE})
                             for c in graph.graph["chains"]]

    def hostile_changes(changes: dict[int, list[RankChange]]) -> dict[int, list[RankChange]]:
        return {n: [RankChange(ItemRef(index=c.item.index, item_id=c.item.item_id,
                                       title=IMG_TITLE), c.rank_with, c.rank_without)
                    for c in items] for n, items in changes.items()}

    reasoning = ReasoningChange(hostile_changes(data.reasoning.entered),
                                hostile_changes(data.reasoning.left),
                                data.reasoning.target_rank_without)
    cf = data.counterfactual
    cf.result = cf.result.model_validate(poison(cf.result.model_dump()))
    provenance = replace(data.provenance, dataset=LINK_TITLE, graph_builder=CLOSE_SCRIPT_TITLE)
    document = report_html(ReportInput(hostile, graph, reasoning, provenance, cf))
    for payload in payloads:
        assert payload not in document
        assert html.escape(payload, quote=True) in document
    assert "<script" not in document.lower()
    assert "<img" not in document.lower()
    assert 'href="javascript' not in document.lower()
    assert not HANDLER.search(document)


def test_json_export_keeps_the_provenance_and_round_trips(handle: FusionHandle,
                                                          user: str) -> None:
    chains, _ = reasoning_elements(handle.explainer.point(user).prefix)
    data = app_export(handle, user, None, CounterfactualState(chains=chains[:1]))
    text = report_json(data)
    explanation, state = read_report_json(text)
    assert explanation == data.explanation
    assert (state.chains, state.nodes, state.items) == (chains[:1], [], [])
    assert state.result == data.counterfactual.result
    raw = json.loads(text)
    assert raw["schema"] == "reasonrec.report" and raw["version"] == 2
    assert raw["explanation"]["schema"] == "reasonrec.explanation"
    prov = raw["explanation"]["provenance"]
    assert prov["base_run"].endswith("srgnn/20261205-092329-2102")
    assert prov["fusion_run"].endswith(f"fusion-llmrg/{SHIPPED_FUSED_RUN}")
    assert raw["provenance"]["base"] == {"trained": "2026-12-05", "seed": 2020, "users": None}
    assert raw["reasoning_change"]["target_rank_without"] == data.reasoning.target_rank_without


@pytest.mark.parametrize(("args", "message"), [
    (["--user", "no-such-user"], "unknown user 'no-such-user'"),
    (["--user", "196", "--step", "10"], "--step 10 is outside the history window"),
    (["--user", "196", "--graphs", "bundle"], "no reasoning graph for user 196"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli_args: list[str], tmp_path: Path,
                                                  args: list[str], message: str) -> None:
    out = tmp_path / "report.html"
    code, _, err = invoke(*cli_args, "report", *args, "--out", str(out))
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_out_must_be_an_html_file(cli_args: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "folder.html"
    folder.mkdir()
    for out, message in ((tmp_path / "report.pdf", "name it *.html"),
                         (folder, "is a directory")):
        code, _, err = invoke(*cli_args, "report", "--user", "196", "--out", str(out))
        assert code == 2 and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.html"]
