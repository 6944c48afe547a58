"""App-test fixtures: a studio config per test, on ml-100k or on the hostile dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.app.hostile_data import write_config, write_hostile_dataset

APP = str(Path(__file__).parents[2] / "app" / "main.py")
UseConfig = Callable[..., Path]


@pytest.fixture(autouse=True)
def no_preload(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LLM load at app start: each app test would load (and, on its fresh data dir, encode
    the catalogue) in the background for nothing. tests/app/test_error_paths.py turns it on."""
    from app.state import PRELOAD_ENV

    monkeypatch.setenv(PRELOAD_ENV, "0")


@pytest.fixture()
def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UseConfig:
    """Point $REASONREC_CONFIG at a fresh TOML for ``data_path`` and drop the cached Studio.

    Call as ``use_config(data_path, extra_toml="")``.
    """

    def use(data_path: Path, extra_toml: str = "") -> Path:
        config = write_config(tmp_path / "studio.toml", data_path, tmp_path / "data", extra_toml)
        monkeypatch.setenv("REASONREC_CONFIG", str(config))
        from app.state import clear_shared
        clear_shared()  # the cached Studio and models were built from another test's config
        return config

    return use


@pytest.fixture()
def ml100k_app(ml100k_dir: Path, use_config: UseConfig) -> Path:
    """The app configured on the real ml-100k."""
    return use_config(ml100k_dir)


@pytest.fixture()
def hostile_dir(tmp_path: Path) -> Path:
    return write_hostile_dataset(tmp_path / "hostile")


@pytest.fixture()
def hostile_app(hostile_dir: Path, use_config: UseConfig) -> Path:
    """The app configured on the tiny dataset with script-injecting titles."""
    return use_config(hostile_dir)
