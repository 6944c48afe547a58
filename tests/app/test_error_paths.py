"""The app's expected error paths (issue #16): each shows a message saying what to do next in
the app, and no exception reaches Streamlit's exception box.

HTTP server down, missing GGUF, unknown user, reset after a bad setting: AppTest sees each
message (tests/browser/test_error_paths_e2e.py checks the server-down path in Chromium).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import keys
from app.components.builder_load import BuilderLoads
from models.data import load_dataset
from reasonrec.bench_app import free_port
from tests.app.conftest import APP, UseConfig

REASONING = "views/reasoning.py"
SETTINGS = "views/settings.py"
EXPLORER = "views/session_explorer.py"
USER = "13"


def open_page(page: str, user: str | None = None, timeout: float = 180) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    if user is not None:
        at.session_state[keys.CURRENT_USER] = user
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def no_cli_advice(message: str) -> None:
    """Browser messages name the Settings page, not command-line flags or env variables."""
    assert "pass --model" not in message and "REASONREC_CONFIG" not in message, message


def http_down_overrides() -> dict[str, str]:
    """The HTTP backend on a free loopback port with nothing listening."""
    return {"backend": "http", "http_url": f"http://127.0.0.1:{free_port()}/v1"}


# ------------------------------------------------------------------ server down


def test_http_server_down_is_an_error_and_the_status_ends_failed(ml100k_app: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state[keys.CURRENT_USER] = USER
    at.session_state[keys.REASONING_OVERRIDES] = overrides = http_down_overrides()
    at.run()
    at.switch_page(REASONING).run()
    at.button(key="reasoning_build").click().run()
    assert not at.exception, at.exception
    (message,) = errors(at)
    assert overrides["http_url"] in message and "connection refused" in message
    assert "Start the server" in message and "Settings" in message
    no_cli_advice(message)
    (status,) = at.status
    assert status.proto.state == status.proto.ERROR and "could not be loaded" in status.label
    assert keys.built_graph(USER) not in at.session_state

    # The Settings page's check says the same, without a traceback.
    at.switch_page(SETTINGS).run()
    at.button(key="settings_check").click().run()
    assert not at.exception, at.exception
    (message,) = errors(at)
    assert "did not answer" in message and "Start the server" in message


# ---------------------------------------------------------------- missing GGUF


def test_missing_gguf_names_the_settings_page(ml100k_dir: Path, use_config: UseConfig) -> None:
    use_config(ml100k_dir, '[reasoning]\nmodel_path = "/nonexistent/model.gguf"\n')
    at = open_page(REASONING, USER)
    at.button(key="reasoning_build").click().run()
    assert not at.exception, at.exception
    (message,) = errors(at)
    assert "/nonexistent/model.gguf" in message and "Settings" in message
    no_cli_advice(message)
    (status,) = at.status
    assert status.proto.state == status.proto.ERROR

    at.switch_page(SETTINGS).run()
    at.button(key="settings_check").click().run()
    assert not at.exception, at.exception
    (message,) = errors(at)
    assert "/nonexistent/model.gguf" in message and "Settings" in message
    no_cli_advice(message)


# ----------------------------------------------------------------- unknown user


@pytest.mark.parametrize("page", [EXPLORER, REASONING])
def test_unknown_user_falls_back_with_a_message(ml100k_dir: Path, ml100k_app: Path,
                                               page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state[keys.CURRENT_USER] = "no-such-user"   # a stale session, another dataset
    at.switch_page(page).run()
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning if "not in this dataset" in w.value]
    first = load_dataset(ml100k_dir).user_ids[0]   # file order: 196
    assert "no\\-such\\-user" in warning and f"showing user {first} instead" in warning
    assert at.session_state[keys.CURRENT_USER] == first
    at.run()   # the fallback is said once
    assert not [w for w in at.warning if "not in this dataset" in w.value]


# ------------------------------------------------------- reset after a bad setting


def test_reset_after_a_bad_setting_resets_the_form(ml100k_app: Path) -> None:
    at = open_page(SETTINGS)
    at.text_input(key="settings_model").set_value("/no/such/model.gguf")
    at.button[0].click().run()                       # the form's Apply
    (message,) = errors(at)
    assert "Not applied" in message and "/no/such/model.gguf" in message
    down = http_down_overrides()
    at.radio(key="settings_backend").set_value("http")
    at.text_input(key="settings_url").set_value(down["http_url"])
    at.button[0].click().run()                       # HTTP is a valid setting: applied
    assert at.session_state[keys.REASONING_OVERRIDES]["backend"] == "http"

    at.button(key="settings_reset").click().run()
    assert not at.exception, at.exception
    assert keys.REASONING_OVERRIDES not in at.session_state
    assert at.radio(key="settings_backend").value == "llama"
    assert at.text_input(key="settings_model").value == ""
    assert at.text_input(key="settings_url").value != down["http_url"]
    assert any("config file" in s.value for s in at.success)
    at.button[0].click().run()                       # Apply now applies the config file's values
    assert not errors(at)
    assert at.session_state[keys.REASONING_OVERRIDES] == {}


# ---------------------------------------------------- the background load (unit)


class FakeBuilder:
    """Stands in for GraphBuilder in the loader's unit tests (no LLM)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.warmed = False

    @property
    def settings(self) -> dict[str, str]:
        return {"model": "fake"}

    def warm_up(self, encoder: bool = False) -> dict[str, float]:
        if self.gate is not None:
            self.gate.wait(10)
        self.warmed = encoder
        return {}


def test_a_load_is_shared_and_reports_its_step_and_time() -> None:
    gate = threading.Event()
    opened: list[int] = []
    loads = BuilderLoads()

    def open_builder() -> FakeBuilder:
        opened.append(1)
        return FakeBuilder(gate)

    first = loads.get("{}", open_builder)
    assert loads.get("{}", open_builder) is first and loads.peek("{}") is first
    deadline = time.monotonic() + 5
    while "item vectors" not in first.step and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not first.done and "item vectors" in first.step
    gate.set()
    assert first.wait(5) and first.error is None and first.builder.warmed
    assert opened == [1] and first.seconds >= 0 and first.step == "done"


def test_a_failed_load_is_kept_for_the_page_then_retried() -> None:
    from reasoning.backend import LLMError

    loads = BuilderLoads()

    def down() -> FakeBuilder:
        raise LLMError("http://127.0.0.1:9/v1/models: [Errno 111] Connection refused")

    failed = loads.get("http", down)
    assert failed.wait(5) and isinstance(failed.error, LLMError) and failed.builder is None
    assert loads.peek("http") is failed
    retried = loads.get("http", FakeBuilder)   # the server is up now
    assert retried is not failed and retried.wait(5) and retried.error is None
