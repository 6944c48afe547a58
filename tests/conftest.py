"""Shared fixtures: the real ml-100k copy and tiny synthetic datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from models.data import Dataset, ensure_ml100k, load_dataset


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The checksummed ml-100k directory (fetched once; ``$REASONREC_DATA_DIR`` if set)."""
    data_dir = os.environ.get("REASONREC_DATA_DIR")
    return ensure_ml100k(Path(data_dir) if data_dir else None)


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> Dataset:
    """The real ml-100k dataset, loaded once per test session (treat it as read-only)."""
    return load_dataset(ml100k_dir)


WriteAtomic = Callable[..., Path]


@pytest.fixture
def write_atomic(tmp_path: Path) -> WriteAtomic:
    """Write a tiny RecBole atomic dataset and return its directory.

    Call as ``write_atomic(inter_text, item_text=None, name="toy", user_text=None,
    directory=None)``. Text is written as UTF-8; pass ``bytes`` to control the exact
    bytes (other encodings, bad bytes). The directory defaults to ``tmp_path/name``.
    """

    def write(inter_text: str | bytes, item_text: str | bytes | None = None, *,
              name: str = "toy", user_text: str | bytes | None = None,
              directory: Path | None = None) -> Path:
        folder = Path(directory) if directory is not None else tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, content in (("inter", inter_text), ("item", item_text),
                                ("user", user_text)):
            if content is None:
                continue
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            (folder / f"{name}.{suffix}").write_bytes(data)
        return folder

    return write
