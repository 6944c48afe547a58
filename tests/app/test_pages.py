"""AppTest flows for the navigation and the session explorer.

AppTest cannot run JavaScript: the pyvis graph is checked as the HTML the page
hands to ``st.iframe`` (inside the ``session-graph`` container); the browser
tests in tests/browser check what it does.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.graph_html import NEVER_SEEN, check_offline, graph_nodes
from tests.app.conftest import APP, UseConfig
from tests.app.hostile_data import (
    HOSTILE_GENRE,
    HOSTILE_TITLES,
    HOSTILE_USER,
    IMG_TITLE,
    SCRIPT_TITLE,
)

EXPLORER = "views/session_explorer.py"


def open_explorer(timeout: float = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    assert not at.exception
    at.switch_page(EXPLORER).run()
    assert not at.exception
    return at


def graph_document(at: AppTest) -> str:
    block = at.get_by_key("session-graph")
    (iframe,) = list(block.children.values())
    return iframe.proto.srcdoc


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def window_frame(at: AppTest) -> pd.DataFrame:
    frames = [d.value for d in at.dataframe if "role" in d.value.columns]
    assert len(frames) == 1
    return frames[0]


def test_app_opens_on_the_session_explorer(ml100k_app: Path) -> None:
    # The first page needs only the data: the studio is interactive before any model loads.
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "ReasonRec Studio"
    assert at.selectbox(key="explorer_user").value == "196"  # the dataset's first user
    assert at.header[0].value == "Session explorer"


def test_explorer_shows_graph_window_and_stats(ml100k_app: Path, ml100k) -> None:
    at = open_explorer()
    user = at.selectbox(key="explorer_user").value
    history = ml100k.history(user)
    slider = at.slider(key=f"explorer_point_{user}")
    assert (slider.min, slider.max, slider.value) == (1, len(history), len(history) - 1)

    document = graph_document(at)
    check_offline(document)
    assert "cdn.jsdelivr" not in document and "cdnjs" not in document
    nodes = graph_nodes(document)
    window = [n for n in nodes if n["role"] == "window"]
    (next_node,) = [n for n in nodes if n["role"] == "next"]
    assert len(window) == 10  # l_tru defaults to 10
    expected = [ml100k.catalogue[int(i)].display_name for i in history[-11:-1]]
    assert [n["step"] for n in window] == list(range(1, 11))
    for node, title in zip(window, expected):
        assert html.escape(title) in node["tooltip_html"]
    assert NEVER_SEEN in next_node["label"] and NEVER_SEEN.capitalize() in next_node["tooltip_html"]
    assert ml100k.catalogue[int(history[-1])].display_name[:10] in next_node["label"]

    shown = metrics(at)
    assert shown["Items in window"] == "10 of 10"
    assert int(shown["Sessions (whole history)"]) == len(ml100k.sessions(user))
    table = window_frame(at)
    assert list(table["title"][:10]) == expected
    assert table["role"].iloc[-1] == f"true next item ({NEVER_SEEN})"


def test_point_slider_moves_the_window(ml100k_app: Path, ml100k) -> None:
    at = open_explorer()
    user = at.selectbox(key="explorer_user").value
    history = ml100k.history(user)
    at.slider(key=f"explorer_point_{user}").set_value(4).run()
    assert not at.exception
    assert metrics(at)["Items in window"] == "4 of 10"
    table = window_frame(at)
    assert list(table["title"]) == [ml100k.catalogue[int(i)].display_name for i in history[:5]]

    at.slider(key=f"explorer_point_{user}").set_value(len(history)).run()
    assert len(window_frame(at)) == 10
    assert not any(n["role"] == "next" for n in graph_nodes(graph_document(at)))
    assert any("end of the history" in c.value for c in at.caption)


def test_user_carries_over_between_pages(ml100k_app: Path, ml100k) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/settings.py").run()    # a page that sets no user: nothing changes
    at.switch_page(EXPLORER).run()
    assert at.selectbox(key="explorer_user").value == "196"
    at.selectbox(key="explorer_user").set_value("42").run()
    assert metrics(at)["Items in window"] == "10 of 10"
    at.switch_page("views/recommendations.py").run()
    assert not at.exception
    assert at.selectbox(key="user").value == "42"


def test_find_user_by_a_movie_they_watched(ml100k_app: Path, ml100k) -> None:
    at = open_explorer()
    at.radio(key="explorer_find_by").set_value("By a movie they watched").run()
    assert not at.exception
    assert "Pick a movie" in at.info[0].value
    movie = ml100k.catalogue.search("Toy Story")[0]
    at.selectbox(key="explorer_movie").set_value(movie.index).run()
    assert not at.exception
    watchers = at.selectbox(key="explorer_movie_user")
    assert len(watchers.options) == sum(int((h == movie.index).any()) for h in ml100k.histories)
    user = watchers.options[3]
    watchers.set_value(user).run()
    assert movie.index in ml100k.history(user)
    assert at.slider(key=f"explorer_point_{user}").max == len(ml100k.history(user))


def test_window_length_comes_from_config(ml100k_dir: Path, use_config: UseConfig) -> None:
    use_config(ml100k_dir, "[reasoning]\nl_tru = 3\n")
    at = open_explorer()
    assert metrics(at)["Items in window"] == "3 of 3"
    assert len([n for n in graph_nodes(graph_document(at)) if n["role"] == "window"]) == 3


def test_bad_window_length_is_an_error_message(ml100k_dir: Path, use_config: UseConfig) -> None:
    use_config(ml100k_dir, "[reasoning]\nl_tru = 0\n")
    at = open_explorer()
    assert "l_tru" in at.error[0].value and "config" in at.error[0].value


def test_bad_dataset_path_is_an_error_on_every_page(tmp_path: Path, use_config: UseConfig) -> None:
    use_config(tmp_path / "missing")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and "no such dataset directory" in at.error[0].value
    at.switch_page(EXPLORER).run()
    assert not at.exception and "no such dataset directory" in at.error[0].value


def test_hostile_titles_are_escaped_in_the_graph(hostile_app: Path) -> None:
    at = open_explorer(timeout=60)
    at.selectbox(key="explorer_user").set_value(HOSTILE_USER).run()
    assert not at.exception
    document = graph_document(at)
    check_offline(document)
    for raw in (*HOSTILE_TITLES, HOSTILE_GENRE, "<svg", "<img", "<a href"):
        assert raw not in document  # neither markup nor a closing </script> gets through
    nodes = graph_nodes(document)
    tooltips = "".join(n["tooltip_html"] for n in nodes)
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in tooltips
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in tooltips
    assert "&lt;svg/onload=window.__xss=1&gt;" in tooltips
    (next_node,) = [n for n in nodes if n["role"] == "next"]
    assert "&lt;img src=x" in next_node["tooltip_html"]
    # The canvas labels and the table keep the text as text.
    assert any(n["label"].startswith("2. <script>") for n in nodes)
    table = window_frame(at)
    assert SCRIPT_TITLE in set(table["title"]) and IMG_TITLE in set(table["title"])


@pytest.mark.parametrize("page", ["views/recommendations.py", EXPLORER, "views/reasoning.py",
                                  "views/knowledge_base.py", "views/settings.py"])
def test_pages_run_on_the_hostile_dataset(hostile_app: Path, page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception


def test_bad_dataset_path_is_an_error_message(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = "{tmp_path / "missing"}"\ndata_dir = "{tmp_path}"\n')
    monkeypatch.setenv("REASONREC_CONFIG", str(config))
    from app.state import clear_shared
    clear_shared()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "no such dataset directory" in at.error[0].value
