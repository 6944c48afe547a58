"""The stakeholder report: content, offline, escaping of hostile text, JSON round trip.

Built from a real explanation of a real fused model on ml-100k
(tests/app/effect_setup.py); the escaping test puts script-injecting titles and
reasons into that explanation and its graph, as a hostile catalogue or LLM would.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from app.components.effect_charts import selected_item
from app.report import (CounterfactualState, ReportInput, ReportNotOfflineError,
                        check_report_offline, read_report_json, report_html, report_json)
from models.data import Dataset
from models.explain import Explainer
from models.graph_data import reasoning_elements
from reasonrec.config import load_config
from reasonrec.fusion import workspace
from reasonrec.studio import Studio
from tests.app.effect_setup import write_fast_config
from tests.app.hostile_data import CLOSE_SCRIPT_TITLE, IMG_TITLE, LINK_TITLE, SCRIPT_TITLE
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def setup(ml100k: Dataset, ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Explainer, list[str]]:
    config, users = write_fast_config(ml100k, ml100k_dir, tmp_path_factory.mktemp("report"))
    studio = Studio(load_config(config))
    ws = workspace(studio, studio.config.fusion)
    return ws.explainer(ws.fused(studio.config.fusion.variant)), users


def report_input(explainer: Explainer, user: str, with_counterfactual: bool) -> ReportInput:
    point = explainer.point(user)
    state = CounterfactualState()
    if with_counterfactual:
        chains, _ = reasoning_elements(point.prefix)
        state = CounterfactualState(chains=chains[:1])
        state.result = explainer.counterfactual(point, explainer.removal(point, chains=chains[:1]))
    return ReportInput(explainer.explain(user), point.prefix, state)


def test_report_shows_graph_lists_explanations_and_counterfactual(setup: Any) -> None:
    explainer, users = setup
    data = report_input(explainer, users[0], with_counterfactual=True)
    document = report_html(data)
    x = data.explanation
    for row in [*x.top_k.base, *x.top_k.fused]:
        assert html.escape(row.title) in document
    for item in x.items:
        assert html.escape(item.title) in document
        for path in item.paths:
            assert html.escape(path.id) in document
            for edge in path.edges:
                if edge.reason:
                    assert html.escape(edge.reason) in document
    for node, a in data.graph.nodes(data=True):
        if a["kind"] == "session_item":
            assert html.escape(f"step {a['step']}: {a['title']}") in document
    assert document.count("<svg") >= 2 + len(x.items)  # graph, slope chart, deletion curves
    assert "Counterfactual" in document and "After removal" in document
    assert f"Switched off chains/nodes: {data.counterfactual.chains[0]}" in document
    assert "fidelity+" in document and "E_ori" in document


def test_report_is_offline_and_runs_nothing(setup: Any) -> None:
    explainer, users = setup
    document = report_html(report_input(explainer, users[1], with_counterfactual=False))
    assert not REMOTE.search(document)
    assert "<script" not in document.lower()
    assert not re.search(r"<[^>]+\son\w+\s*=", document)   # no event-handler attributes
    assert "Content-Security-Policy" in document and "default-src 'none'" in document
    check_report_offline(document)
    with pytest.raises(ReportNotOfflineError):
        check_report_offline(document.replace("</body>", '<img src="https://cdn.example/x.png">'))


def test_hostile_titles_and_reasons_appear_escaped_only(setup: Any) -> None:
    explainer, users = setup
    data = report_input(explainer, users[2], with_counterfactual=True)
    # every title and LLM text becomes a script/markup injection attempt
    raw = data.explanation.model_dump(by_alias=True)
    payloads = [SCRIPT_TITLE, IMG_TITLE, CLOSE_SCRIPT_TITLE, LINK_TITLE]
    counter = iter(range(10**6))

    def poison(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: poison(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v, key) for v in value]
        if key in {"title", "label", "reason", "intent"} and isinstance(value, str):
            return payloads[next(counter) % len(payloads)]
        return value

    hostile = type(data.explanation).model_validate(poison(raw))
    graph = data.graph.copy()
    for i, (_, a) in enumerate(graph.nodes(data=True)):
        for key in ("title", "intent", "reason"):
            if key in a:
                a[key] = payloads[i % len(payloads)]
    for i, (_, _, a) in enumerate(graph.edges(data=True)):
        if "reason" in a:
            a["reason"] = payloads[i % len(payloads)]
    cf = data.counterfactual
    cf.result = cf.result.model_validate(poison(cf.result.model_dump())) if cf.result else None
    document = report_html(ReportInput(hostile, graph, cf))
    for payload in payloads:
        assert payload not in document
        assert html.escape(payload, quote=True) in document
    assert "<script" not in document.lower()
    assert "<img" not in document.lower()
    assert 'href="javascript' not in document.lower()
    assert not re.search(r"<[^>]+\son\w+\s*=", document)


def test_json_export_round_trips(setup: Any) -> None:
    explainer, users = setup
    data = report_input(explainer, users[0], with_counterfactual=True)
    explanation, state = read_report_json(report_json(data))
    assert explanation == data.explanation
    assert (state.chains, state.nodes, state.items) == (data.counterfactual.chains, [], [])
    assert state.result == data.counterfactual.result
    # the explanation part is what `reasonrec explain --json` writes (schema alias kept)
    import json
    raw = json.loads(report_json(data))
    assert raw["explanation"]["schema"] == "reasonrec.explanation"
    assert raw["schema"] == "reasonrec.report"


def test_chart_selection_payload_shapes() -> None:
    assert selected_item({"selection": {"points": [{"customdata": [17]}]}}) == 17
    assert selected_item({"selection": {"points": [{"customdata": 3}, {"customdata": 9}]}}) == 9
    assert selected_item({"selection": {"points": [{"x": 1}]}}) is None
