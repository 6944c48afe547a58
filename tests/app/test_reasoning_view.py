"""Unit tests of the Reasoning page's pure helpers: graph HTML, escaping, edge styling,
node details, build facts and live progress (no Streamlit, no LLM)."""

from __future__ import annotations

import html
from pathlib import Path

import networkx as nx
import pytest

from app.components.build_progress import LiveBuild, ObservedKB, tail
from app.components.build_log_view import offload_state, stage_rows, tokens_per_second
from app.components.node_details import details_html, node_details, node_label
from app.components.reasoning_view import (
    HIGH_SCORE,
    LOW_SCORE,
    TARGET_ID,
    UNSCORED,
    chain_edge_style,
    hidden_chains,
    reasoning_graph_html,
    score_colour,
    visible_nodes,
)
from app.graph_html import check_offline, graph_nodes
from models.data import Dataset, load_dataset
from reasoning.backend_info import BackendInfo
from reasoning.graph import BuildLog, StageLog, graph_from_json, graph_to_json
from tests.app.hostile_data import HOSTILE_TITLES, HOSTILE_USER, IMG_TITLE, write_hostile_dataset
from tests.app.reasoning_graphs import REJECTED, VERIFIED, make_graph

REASON = '<img src=x onerror="window.__xss=1">'
INTENT = "</script><script>window.__xss=1</script>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset(write_hostile_dataset(tmp_path_factory.mktemp("hostile")))


@pytest.fixture(scope="module")
def graph(hostile: Dataset) -> nx.DiGraph:
    return make_graph(hostile, HOSTILE_USER, reason=REASON, intent=INTENT)


def lookup(hostile: Dataset):
    return lambda index: hostile.catalogue[index]


def hex_rgb(colour: str) -> tuple[int, ...]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def edge_data(document: str) -> list[dict]:
    import json
    import re

    match = re.search(r"edges = new vis\.DataSet\((\[.*?\])\);", document, re.DOTALL)
    assert match
    return json.loads(match.group(1))


# ------------------------------------------------------------------ styling


def test_score_colour_runs_red_to_green_and_grey_when_unscored() -> None:
    assert hex_rgb(score_colour(0.0)) == LOW_SCORE
    assert hex_rgb(score_colour(1.0)) == HIGH_SCORE
    assert score_colour(-3) == score_colour(0.0) and score_colour(7) == score_colour(1.0)
    assert score_colour(None) == UNSCORED and score_colour(float("nan")) == UNSCORED
    middle = hex_rgb(score_colour(0.5))
    assert LOW_SCORE[1] < middle[1] < HIGH_SCORE[1]


def test_chain_edges_grow_with_the_score_and_dash_when_rejected() -> None:
    low, high = chain_edge_style(0.1, "rejected"), chain_edge_style(0.9, "verified")
    assert low.width < high.width and low.dashes and not high.dashes
    assert low.colour == score_colour(0.1)
    assert chain_edge_style(None, "unverified").colour == UNSCORED


def test_rejected_chains_are_hidden_unless_asked_for(graph: nx.DiGraph) -> None:
    assert hidden_chains(graph, show_rejected=False) == {REJECTED}
    assert hidden_chains(graph, show_rejected=True) == set()
    hidden = reasoning_graph_html(graph, show_rejected=False)
    shown = reasoning_graph_html(graph, show_rejected=True)
    chain_edges = [e for e in edge_data(shown) if e.get("kind") == "chain"]
    assert {e["dashes"] for e in chain_edges} == {True, False}
    assert all(not e["dashes"] for e in edge_data(hidden) if e.get("kind") == "chain")
    # Every session item stays, in time order along the row.
    nodes = [n for n in graph_nodes(shown) if n["kind"] == "session_item"]
    steps = sorted(nodes, key=lambda n: n["x"])
    assert [n["id"] for n in steps] == [f"s{i}" for i in range(len(nodes))]
    assert {n["y"] for n in nodes} == {0}


def test_intents_of_a_hidden_chain_are_hidden_too(graph: nx.DiGraph) -> None:
    moved = graph.copy()
    moved.nodes[f"d{VERIFIED}.1"]["chain"] = REJECTED
    assert f"d{VERIFIED}.1" not in visible_nodes(moved, show_rejected=False)
    assert f"d{VERIFIED}.1" in visible_nodes(moved, show_rejected=True)


def test_kinds_are_visually_distinct_and_the_target_is_marked(graph: nx.DiGraph,
                                                              hostile: Dataset) -> None:
    document = reasoning_graph_html(graph, lookup=lookup(hostile), show_rejected=True)
    shapes = {n["kind"]: n["shape"] for n in graph_nodes(document)}
    assert shapes == {"session_item": "dot", "intent": "diamond", "candidate_item": "box",
                      TARGET_ID: "box"}
    target = next(n for n in graph_nodes(document) if n["id"] == TARGET_ID)
    assert "never seen by the models" in target["label"]
    candidate = next(n for n in graph_nodes(document) if n["kind"] == "candidate_item")
    assert candidate["label"].startswith("★")   # the candidate is the true next item
    assert TARGET_ID not in {n["id"] for n in graph_nodes(
        reasoning_graph_html(graph, lookup=lookup(hostile), show_target=False))}


# ----------------------------------------------------------------- security


def test_graph_html_is_offline_and_escapes_titles_and_llm_text(graph: nx.DiGraph,
                                                              hostile: Dataset) -> None:
    document = reasoning_graph_html(graph, show_rejected=True, lookup=lookup(hostile))
    check_offline(document)
    for raw in (*HOSTILE_TITLES, REASON, INTENT, "<script>window.__xss"):
        assert raw not in document, f"{raw!r} reached the HTML unescaped"
    tips = "".join(n["tooltip_html"] for n in graph_nodes(document))
    tips += "".join(e.get("tooltip_html", "") for e in edge_data(document))
    assert html.escape(REASON) in tips and html.escape(IMG_TITLE) in tips
    assert html.escape(INTENT) in tips
    assert "<img" not in tips and "<script" not in tips
    assert "rr-node-click" in document   # clicks reach the parent page


def test_details_are_plain_text_rows_rendered_escaped(graph: nx.DiGraph, hostile: Dataset) -> None:
    rows = dict(node_details(graph, "s1", lookup(hostile)))
    assert rows["reason"] == f"{REASON} 1" and rows["source stage"] == "chain"
    assert rows["step"] == "2 of 6" and rows["chain score"] == "0.200"
    assert rows["chain status"] == "rejected"
    markup = details_html(list(rows.items()))
    assert "<img" not in markup and html.escape(REASON) in markup
    intent = dict(node_details(graph, f"d{VERIFIED}.1"))
    assert intent["intent"] == INTENT and intent["source stage"] == "diverge"
    assert intent["chain score"] == "0.800"
    candidate = dict(node_details(graph, next(n for n in graph if n.startswith("c"))))
    assert candidate["match weight"] == "0.700" and "true next item" in candidate["note"]
    target = dict(node_details(graph, TARGET_ID, lookup(hostile)))
    assert target["title"] == IMG_TITLE
    with pytest.raises(KeyError):
        node_details(graph, "nope")
    assert "\n" not in node_label(graph, "s1")


def test_a_graph_survives_its_json_round_trip_in_the_view(graph: nx.DiGraph) -> None:
    again = graph_from_json(graph_to_json(graph))
    assert reasoning_graph_html(again) == reasoning_graph_html(graph)


# ------------------------------------------------------------- build facts


def test_offload_state_in_words() -> None:
    def llama(**stored: object) -> BackendInfo:   # read back as from a stored build log
        return BackendInfo.from_dict({"backend": "llama", **stored})

    assert "cannot offload" in offload_state(llama(supports_gpu_offload=False))
    assert offload_state(llama(supports_gpu_offload=True, n_gpu_layers_offloaded=30,
                               n_layers=30)) == "GPU: 30/30 layers offloaded"
    # llama.cpp counts the output layer: a full offload of a 30-block model is 31 of 31
    assert offload_state(llama(supports_gpu_offload=True, n_gpu_layers_offloaded=31,
                               n_gpu_layers_offloadable=31, n_layers=30)) == "GPU: 31/31 layers offloaded"
    assert "GPU layers set to 0" in offload_state(llama(supports_gpu_offload=True,
                                                        n_gpu_layers_offloaded=0))
    assert "warning" in offload_state(llama(offload_warning="asked for -1 GPU layers"))
    assert offload_state(BackendInfo.from_dict({"backend": "http", "url": "http://gpu1:8000/v1"})) == (
        "remote server http://gpu1:8000/v1")
    assert "without an LLM" in offload_state(BackendInfo.from_dict({"backend": "genre-heuristic",
                                                                    "llm": False}))
    assert offload_state(BackendInfo.from_dict({})) == "not recorded"
    assert offload_state(BackendInfo.from_dict({"backend": "http", "url": "http://127.0.0.1:8000/v1"})
                         ).startswith("remote")


def test_tokens_per_second_and_stage_rows() -> None:
    log = BuildLog(tokens_out=120, llm_seconds=4.0,
                   stages={"chain": StageLog(seconds=1.234, llm_calls=3, kb_hits=2)})
    assert tokens_per_second(log) == pytest.approx(30.0)
    assert tokens_per_second(BuildLog()) is None
    (row,) = stage_rows(log)
    assert row["stage"] == "chain" and row["seconds"] == 1.23 and row["KB hits"] == 2


# ------------------------------------------------------------ live progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_build_redraws_on_stage_changes_and_at_most_every_interval() -> None:
    clock = FakeClock()
    draws: list[str | None] = []
    live = LiveBuild(redraw=lambda state: draws.append(state.stage), min_interval=1.0, clock=clock)
    live.on_token("chain", '{"intent"')        # a new stage draws at once
    live.on_token("chain", ': "x"')           # same instant: throttled
    clock.now = 1.5
    live.on_token("chain", "}")                # interval passed
    live.on_token("verify", "{")               # new stage
    live.on_lookup("diverge", True)            # a KB hit moves the stage too
    assert draws == ["chain", "chain", "verify", "diverge"]
    assert live.text["chain"] == '{"intent": "x"}' and live.tokens["chain"] == 3
    assert "1 hits, 0 misses" in live.kb_line()
    live.finish()
    assert draws[-1] is None and live.finished


def test_observed_kb_reports_lookups_and_delegates_the_rest() -> None:
    class Store:
        def __init__(self) -> None:
            self.flushed = False

        def get(self, kind, model, version, fields):
            return {"a": 1} if kind == "chain" else None

        def flush_counters(self) -> None:
            self.flushed = True

    seen: list[tuple[str, bool]] = []
    inner = Store()
    kb = ObservedKB(inner, lambda kind, hit: seen.append((kind, hit)))
    assert kb.get("chain", "m", "v", {}) == {"a": 1}
    assert kb.get("verify", "m", "v", {}) is None
    kb.flush_counters()
    assert seen == [("chain", True), ("verify", False)] and inner.flushed


def test_tail_keeps_the_end_of_long_text() -> None:
    assert tail("short") == "short"
    text = "x" * 1000 + "\nlast line"
    assert tail(text, 100).endswith("last line") and len(tail(text, 100)) <= 101
