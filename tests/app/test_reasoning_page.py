"""AppTest flows for the Reasoning page (issue #5, page 2).

AppTest runs no JavaScript: the clickable graph comes back as an untyped
component element, so the graph document is checked as the HTML handed to the
component, a click is imitated through the node select box (the component's
click lands in the same session-state key), and tests/browser clicks for real.
"""

from __future__ import annotations

import gzip
import html
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import keys
from app.components.reasoning_view import TARGET_ID
from app.graph_html import check_offline
from models.data import Dataset, default_data_dir, load_dataset
from reasoning.graph import graph_from_json
from tests.app.conftest import APP, UseConfig
from tests.app.hostile_data import HOSTILE_TITLES, HOSTILE_USER, IMG_TITLE, SCRIPT_TITLE
from tests.app.reasoning_graphs import make_graph, store_graph

REASONING = "views/reasoning.py"
USER = "13"


@pytest.fixture(scope="session")
def shared_embeddings_dir() -> Path:
    """The catalogue item vectors every test shares (as in tests/reasoning/conftest.py)."""
    return default_data_dir() / "reasoning" / "embeddings"


def graphs_dir(config: Path) -> Path:
    return config.parent / "data" / "reasoning" / "graphs"


def share_item_vectors(config: Path, shared_embeddings_dir: Path) -> None:
    """Point the app's embeddings folder at the shared cache (building it cold takes ~80 s)."""
    target = config.parent / "data" / "reasoning" / "embeddings"
    target.parent.mkdir(parents=True, exist_ok=True)
    shared_embeddings_dir.mkdir(parents=True, exist_ok=True)   # a fresh machine: first build fills it
    if not target.exists():
        target.symlink_to(shared_embeddings_dir, target_is_directory=True)


def open_reasoning(user: str | None = None, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    if user is not None:
        at.session_state[keys.CURRENT_USER] = user
    at.run()
    assert not at.exception
    at.switch_page(REASONING).run()
    assert not at.exception, at.exception
    return at


def component_document(at: AppTest) -> str:
    """The graph HTML handed to the clickable-graph component (its JSON ``data``)."""
    block = at.get_by_key("reasoning-graph")
    (element,) = list(block.children.values())
    return json.loads(element.proto.json)["html"]


def details_text(at: AppTest) -> str:
    block = at.get_by_key("reasoning-node-details")
    return "\n".join(child.proto.body for child in block.children.values())


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --------------------------------------------------------------- stored graph


def test_stored_graph_loads_instantly_and_a_node_can_be_selected(
        ml100k: Dataset, ml100k_app: Path) -> None:
    graph = make_graph(ml100k, USER)
    store_graph(graphs_dir(ml100k_app), graph)
    started = time.perf_counter()
    at = open_reasoning(USER)
    elapsed = time.perf_counter() - started
    assert not errors(at)
    assert at.selectbox(key="reasoning_user").value == USER
    assert elapsed < 30, f"the stored graph took {elapsed:.1f}s (it should need no LLM)"
    loaded = at.session_state[keys.loaded_graph(USER)]
    assert sorted(loaded.nodes) == sorted(graph.nodes)
    assert keys.built_graph(USER) not in at.session_state   # kept for graphs built on the page
    assert any("this machine's saved graphs" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["LLM calls"] == "7"

    document = component_document(at)
    check_offline(document)
    assert "rr-node-click" in document and "s0" in document
    # Rejected chains are hidden by default, shown by the toggle.
    hidden_count = document.count('"dashes": true')
    at.toggle(key="reasoning_show_rejected").set_value(True).run()
    assert not at.exception
    assert component_document(at).count('"dashes": true') > hidden_count

    # "Click" a session item: its reason, score, step and source stage appear.
    at.selectbox(key=f"reasoning_node_{USER}").set_value("s2").run()
    assert not at.exception
    text = details_text(at)
    assert "same mood 2" in text and "0.800" in text and "3 of 10" in text and "chain" in text
    assert at.session_state[keys.SELECTED_NODE] == {"user": USER, "node": "s2"}
    at.selectbox(key=f"reasoning_node_{USER}").set_value("dc1.1").run()
    assert "space adventure" in details_text(at) and "diverge" in details_text(at)


def test_window_step_shows_the_prefix_graph(ml100k: Dataset, ml100k_app: Path) -> None:
    store_graph(graphs_dir(ml100k_app), make_graph(ml100k, USER))
    at = open_reasoning(USER)
    full = component_document(at)
    slider = at.slider(key=f"reasoning_step_{USER}")   # films watched: window step 3
    slider.set_value(slider.min + 2).run()
    assert not at.exception
    prefix = component_document(at)
    assert '"s2"' in prefix and '"s3"' not in prefix and '"s3"' in full


def test_hostile_graph_text_is_escaped(hostile_dir: Path, use_config: UseConfig) -> None:
    config = use_config(hostile_dir)
    dataset = load_dataset(hostile_dir)
    reason = '<img src=x onerror="window.__xss=1">'
    intent = "<script>window.__xss=1</script>"
    store_graph(graphs_dir(config), make_graph(dataset, HOSTILE_USER, reason=reason, intent=intent))
    at = open_reasoning(HOSTILE_USER)
    assert not errors(at)
    document = component_document(at)
    check_offline(document)
    for raw in (*HOSTILE_TITLES, reason, intent):
        assert raw not in document, f"{raw!r} reached the graph HTML unescaped"
    assert "<script>window.__xss" not in document
    at.selectbox(key=f"reasoning_node_{HOSTILE_USER}").set_value("s1").run()
    text = details_text(at)
    assert html.escape(reason) in text and "<img" not in text
    node_ids = at.selectbox(key=f"reasoning_node_{HOSTILE_USER}").options
    assert node_ids  # labels are plain text in the select box
    at.selectbox(key=f"reasoning_node_{HOSTILE_USER}").set_value(TARGET_ID).run()
    assert html.escape(IMG_TITLE) in details_text(at) or html.escape(SCRIPT_TITLE) in details_text(at)


# ------------------------------------------------------------------- errors


def test_corrupt_stored_graph_is_an_error_with_a_next_step(ml100k_app: Path) -> None:
    path = graphs_dir(ml100k_app) / f"{USER}.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b'{"schema": "nonsense"}'))
    at = open_reasoning(USER)
    (message,) = errors(at)
    assert "damaged" in message and "Build reasoning graph" in message
    assert at.button(key="reasoning_build")  # the way out is on the page


def test_missing_model_file_is_an_error_with_a_next_step(ml100k_dir: Path,
                                                         use_config: UseConfig) -> None:
    use_config(ml100k_dir, '[reasoning]\nmodel_path = "/nonexistent/model.gguf"\n')
    at = open_reasoning(USER)
    assert any("No reasoning graph" in i.value for i in at.info)
    at.button(key="reasoning_build").click().run()
    assert not at.exception
    (message,) = errors(at)
    assert "/nonexistent/model.gguf" in message and "Settings" in message
    assert "pass --model" not in message   # the command line's advice, not the browser's


def test_user_without_a_window_is_an_error(tmp_path: Path, use_config: UseConfig) -> None:
    data = tmp_path / "single"
    data.mkdir()
    (data / "single.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "a\t1\t4\t1\nb\t1\t4\t1\nb\t2\t4\t2\n", encoding="utf-8")
    (data / "single.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tOne\t1999\tDrama\n2\tTwo\t2000\tComedy\n", encoding="utf-8")
    use_config(data)
    at = open_reasoning("a")
    (message,) = errors(at)
    assert "nothing to reason about" in message and "Pick a user" in message


# ------------------------------------------------------------ real LLM build


@pytest.mark.slow
@pytest.mark.llm
def test_build_with_the_real_llm_streams_saves_and_reloads(
        ml100k_app: Path, shared_embeddings_dir: Path) -> None:
    share_item_vectors(ml100k_app, shared_embeddings_dir)
    at = open_reasoning(USER, timeout=600)
    assert any("No reasoning graph" in i.value for i in at.info)
    at.button(key="reasoning_build").click().run()
    assert not at.exception, at.exception
    assert not errors(at)
    # No load at app start in the app tests: the build waited for it and says both times.
    (status,) = [s for s in at.status if "reasoning graph built in" in s.label]
    assert status.label.startswith("Model loaded in ")
    streamed = "\n".join(c.value for c in status.code)
    assert streamed.strip(), "no LLM text was streamed into the status box"
    assert "KB lookups" in "\n".join(c.value for c in status.caption)
    graph = at.session_state[keys.built_graph(USER)]
    log = graph.graph["build_log"]
    assert log.llm_calls > 0 and log.tokens_out > 0
    labels = {m.label: m.value for m in at.metric}
    assert labels["LLM calls"] == str(log.llm_calls) and labels["Tokens/s"] != "—"
    assert any("GPU offload" in c.value for c in at.caption)

    # Saved where the other pages and the fused model look, and reloaded without the LLM.
    saved = graphs_dir(ml100k_app) / f"{USER}.json.gz"
    stored = graph_from_json(json.loads(gzip.decompress(saved.read_bytes())))
    assert sorted(stored.nodes) == sorted(graph.nodes)
    again = open_reasoning(USER)
    assert any("saved graphs" in c.value for c in again.caption)
    check_offline(component_document(again))
