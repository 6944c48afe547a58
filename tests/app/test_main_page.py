"""AppTest flows for the first app page (dataset summary and a user's top-k)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).parents[2] / "app" / "main.py")


@pytest.fixture()
def app_config(ml100k_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = "{ml100k_dir}"\ndata_dir = "{tmp_path}"\n')
    monkeypatch.setenv("REASONREC_CONFIG", str(config))
    from app.state import get_studio
    get_studio.clear()  # the cached Studio was built from another test's config
    return config


def test_page_shows_dataset_and_top_k(app_config: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["943", "1,682", "100,000", at.metric[3].value]
    assert at.selectbox(key="model").value == "pop"  # the only model with no training needed
    top = at.dataframe[1].value
    assert list(top["rank"]) == list(range(1, 11))

    at.slider(key="k").set_value(5).run()
    assert len(at.dataframe[1].value) == 5
    first_user = at.selectbox(key="user").value
    at.selectbox(key="user").set_value("13").run()
    assert not at.exception and first_user != "13"
    history_titles = set(at.dataframe[0].value["title"])
    assert not history_titles & set(at.dataframe[1].value["title"])


def test_bad_dataset_path_is_an_error_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "studio.toml"
    config.write_text(f'[data]\npath = "{tmp_path / "missing"}"\ndata_dir = "{tmp_path}"\n')
    monkeypatch.setenv("REASONREC_CONFIG", str(config))
    from app.state import get_studio
    get_studio.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "no such dataset directory" in at.error[0].value
