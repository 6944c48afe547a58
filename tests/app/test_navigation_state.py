"""One point scale, a shared user and point, and links that open a view (#18), in AppTest.

The point is "after watching N films" on every page; the Session explorer offers the
whole history, the Reasoning page the window its graph covers (and clamps a point
outside it, saying so). ``?user=U&step=N`` opens that user at that point, and the
address follows the analyst's choices so that it can be shared.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from models.data import Dataset
from tests.app.conftest import APP
from tests.app.reasoning_graphs import make_graph, store_graph

USER = "13"
EXPLORER = "views/session_explorer.py"
REASONING = "views/reasoning.py"


def graphs_dir(config: Path) -> Path:
    return config.parent / "data" / "reasoning" / "graphs"


def params(at: AppTest) -> dict[str, str]:
    return {key: at.query_params[key][0] if isinstance(at.query_params[key], list)
            else at.query_params[key] for key in at.query_params}


def test_a_link_opens_the_user_at_the_point(ml100k_app: Path, ml100k: Dataset) -> None:
    films = len(ml100k.history(USER)) - 20
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["user"] = USER
    at.query_params["step"] = str(films)
    at.run()
    assert not at.exception
    assert at.selectbox(key="explorer_user").value == USER
    assert at.slider(key=f"explorer_point_{USER}").value == films
    assert any(f"films {films - 9}–{films}" in c.value for c in at.caption)


def test_the_point_carries_across_pages_on_one_scale(ml100k_app: Path, ml100k: Dataset) -> None:
    store_graph(graphs_dir(ml100k_app), make_graph(ml100k, USER))
    n = len(ml100k.history(USER))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="explorer_user").set_value(USER).run()
    # the default point on every page: before the held-out last film
    assert at.slider(key=f"explorer_point_{USER}").value == n - 1
    assert params(at) == {"user": USER, "step": str(n - 1)}
    at.slider(key=f"explorer_point_{USER}").set_value(n - 4).run()
    assert params(at) == {"user": USER, "step": str(n - 4)}

    # the Reasoning page's graph covers films n-10 .. n-1: the same point, same number
    at.switch_page(REASONING).run()
    assert not at.exception
    assert at.selectbox(key="reasoning_user").value == USER
    slider = at.slider(key=f"reasoning_step_{USER}")
    assert (slider.min, slider.max, slider.value) == (n - 10, n - 1, n - 4)
    slider.set_value(n - 7).run()
    assert params(at) == {"user": USER, "step": str(n - 7)}
    at.switch_page(EXPLORER).run()
    assert at.slider(key=f"explorer_point_{USER}").value == n - 7

    # a point outside the graph's window is clamped there, and the page says so
    at.slider(key=f"explorer_point_{USER}").set_value(5).run()
    at.switch_page(REASONING).run()
    assert at.slider(key=f"reasoning_step_{USER}").value == n - 10
    assert any("You chose the point after 5 films" in c.value for c in at.caption)
    at.switch_page(EXPLORER).run()   # the choice itself stands
    assert at.slider(key=f"explorer_point_{USER}").value == 5
