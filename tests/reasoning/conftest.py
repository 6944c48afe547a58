"""Reasoning-test fixtures: the real default model and a shared localizer.

The real model (``llm`` marker) is loaded once per test session. The
localizer's item vectors and converted encoder are cached where the studio
caches them (``$REASONREC_DATA_DIR`` or ``~/.cache/reasonrec``): computing them
takes a minute or two on two cores, so tests share that cache instead of
recomputing it in every temporary folder; KBs and graphs always go to
``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models.data import Dataset, default_data_dir
from reasoning.backend import LLMBackend
from reasoning.config import ReasoningConfig, load_reasoning_config
from reasoning.localizer import IntentLocalizer, open_localizer


@pytest.fixture(scope="session")
def shared_embeddings_dir() -> Path:
    """Where every test reads and writes the catalogue's item vectors."""
    return default_data_dir() / "reasoning" / "embeddings"


MakeConfig = Callable[..., ReasoningConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """``make_config(**overrides)``: a config whose KB and graphs live in ``tmp_path``."""

    def make(**overrides: Any) -> ReasoningConfig:
        return load_reasoning_config({"data_dir": str(tmp_path / "data")}, **overrides)

    return make


@pytest.fixture(scope="session")
def llama_backend() -> Iterator[LLMBackend]:
    """The packaged SmolLM2-135M in this process (shared: loading is per process anyway)."""
    from reasoning.llama_backend import shared_llama_backend

    yield shared_llama_backend(load_reasoning_config({}))


@pytest.fixture(scope="session")
def ml100k_localizer(ml100k: Dataset, shared_embeddings_dir: Path) -> IntentLocalizer:
    """The default hybrid localizer over ml-100k (its encoder loads on first use)."""
    return open_localizer(ml100k, load_reasoning_config({}), cache_dir=shared_embeddings_dir)
