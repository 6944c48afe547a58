"""Localizing free-text intents to real catalogue items (stage 2's second half).

The divergent stage's LLM answers with free text ("space battles", or a title
it half remembers, or one it makes up). :class:`IntentLocalizer` maps each text
to the top-r catalogue items with a similarity weight in [0, 1]; only
catalogue indices come out, so a hallucinated title never becomes an item.

The match is hybrid:

* **lexical**: the IDF-weighted share of the text's words found in the item's
  title, year and genres (exact titles and genre words score high; words no
  item has count against the match);
* **encoder**: cosine similarity of text vectors from a small encoder:
  transformers loading the same GGUF as the LLM (``gguf_file=``), run through
  its first :data:`ENCODER_LAYERS` layers and mean-pooled. Vectors are
  standardized per dimension with the catalogue's statistics before the
  cosine, which removes the few huge activation dimensions that otherwise make
  every pair of texts look alike.

The weight is ``lexical_weight * lexical + (1 - lexical_weight) * max(cos, 0)``.

Item vectors are computed once per (encoder weights, catalogue) and cached as
``.npy`` in the data directory (written atomically); the encoder itself loads
lazily, only when a vector is missing, so warm runs never load it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.data import Catalogue
from reasoning.backend import ModelFileError
from reasoning.config import ReasoningConfig
from reasoning.store import write_atomic

# Measured on ml-100k titles with SmolLM2-135M: layer 6 of 30 retrieves "Star
# Wars" -> Star Wars, Return of the Jedi and "space battles" -> Starship
# Troopers, Star Wars; the last layer ranks comedies first for both. It is also
# 5x cheaper to run.
ENCODER_LAYERS = 6
ENCODER_VERSION = "mean-l6-std-v1"   # bump when pooling or layers change: renames the cache
ENCODE_BATCH = 64
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset("a an the of and or in on at to for with from by is it its s".split())


class TextEncoder(Protocol):
    """Turns texts into fixed-size vectors (rows of a ``[n, dim]`` float32 array)."""

    identity: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


def words(text: str) -> list[str]:
    """Lower-case word stems for lexical matching (plural ``-s``/``-ies`` folded)."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


class GGUFTextEncoder:
    """Mean-pooled hidden states of a GGUF model's first layers, via transformers.

    transformers reads a GGUF file slowly (about 40 s for SmolLM2-135M on two
    cores, nearly all of it parsing metadata in Python), so the first load
    saves the converted encoder (its first :data:`ENCODER_LAYERS` layers in
    float32, and the tokenizer) under ``cache_dir`` and later loads read that
    copy in a second or two. The copy is keyed by the GGUF's sha256 and written
    to a temporary folder that is renamed into place, so it is whole or absent.

    Args:
        path: the GGUF file.
        threads: torch threads while encoding (restored afterwards).
        cache_dir: where the converted encoder is kept (``None``: never saved).

    Raises:
        ModelFileError: the file is missing, or transformers cannot read it.
    """

    def __init__(self, path: Path, threads: int, cache_dir: Path | None = None) -> None:
        from reasoning.llama_backend import model_identity_of

        if not path.is_file():
            raise ModelFileError(f"encoder model file {path} not found; set "
                                 "reasoning.encoder_model_path to a GGUF file")
        self.path = path
        self.threads = threads
        self.identity = f"{model_identity_of(path)}:{ENCODER_VERSION}"
        name = hashlib.sha256(self.identity.encode()).hexdigest()[:24]
        self.converted_dir = Path(cache_dir) / f"encoder-{name}" if cache_dir is not None else None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0
        self.loaded_from: str = ""

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            import torch
            from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ModelFileError("the text encoder needs transformers, gguf and accelerate; "
                                 "install the `llm` extra: pip install -e '.[llm]'") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        converted = self.converted_dir
        if converted is not None and (converted / "config.json").is_file():
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(converted))
                base = AutoModel.from_pretrained(str(converted), dtype=torch.float32)
                self.loaded_from = str(converted)
            except (OSError, ValueError, RuntimeError, KeyError):
                base = None   # a damaged copy: convert the GGUF again below
        else:
            base = None
        if base is None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(self.path.parent),
                                                          gguf_file=self.path.name)
                model = AutoModelForCausalLM.from_pretrained(str(self.path.parent),
                                                             gguf_file=self.path.name,
                                                             dtype=torch.float32)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise ModelFileError(f"transformers cannot load {self.path} as an encoder: "
                                     f"{exc}") from None
            base = model.model
            # Only the first layers are run (see ENCODER_LAYERS); the rest are dropped.
            base.layers = base.layers[:ENCODER_LAYERS]
            base.config.num_hidden_layers = ENCODER_LAYERS
            if getattr(base.config, "layer_types", None):
                base.config.layer_types = base.config.layer_types[:ENCODER_LAYERS]
            self.loaded_from = str(self.path)
            if converted is not None:
                self._save_converted(base, tokenizer, converted)
        base.eval()
        tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._model, self._tokenizer = base, tokenizer
        self.load_seconds = time.perf_counter() - started

    @staticmethod
    def _save_converted(base: Any, tokenizer: Any, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            base.save_pretrained(str(staging))
            tokenizer.save_pretrained(str(staging))
            os.rename(staging, target)
        except OSError:
            # Another process got there first, or the disk is full: the encoder
            # still works from the GGUF, just without the faster copy.
            shutil.rmtree(staging, ignore_errors=True)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def encode(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32; texts are encoded shortest first to limit padding."""
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
                                                padding=True)
                        hidden = self._model(**batch).last_hidden_state
                        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype).clone()
                        # The first position carries huge activations in every text
                        # (an attention sink); leave it out unless it is all there is.
                        mask[mask.sum(dim=(1, 2)) > 1, 0] = 0
                        pooled = (hidden * mask).sum(1) / mask.sum(1)
                        for i, vector in zip(chunk, pooled.numpy()):
                            rows[int(i)] = vector
            finally:
                torch.set_num_threads(previous)
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def catalogue_fingerprint(catalogue: Catalogue) -> str:
    """sha256 of every item's description: the item-vector cache is valid for this exact text."""
    digest = hashlib.sha256()
    for item in catalogue.items[1:]:
        digest.update(item.describe().encode("utf-8") + b"\n")
    return digest.hexdigest()


def _atomic_save(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(path, buffer.getvalue())


class IntentLocalizer:
    """Maps intent texts to catalogue items (see the module docstring).

    Args:
        catalogue: the items texts are matched against.
        encoder: the text encoder (loaded lazily by :class:`GGUFTextEncoder`).
        cache_dir: where item vectors are cached.
        lexical_weight: share of the lexical score in the weight.
    """

    def __init__(self, catalogue: Catalogue, encoder: TextEncoder, cache_dir: Path,
                 lexical_weight: float = 0.5) -> None:
        self.catalogue = catalogue
        self.encoder = encoder
        self.cache_dir = Path(cache_dir)
        self.lexical_weight = lexical_weight
        self.fingerprint = catalogue_fingerprint(catalogue)
        self._lock = threading.Lock()
        self._vectors: np.ndarray | None = None   # standardized, unit rows [n_items, dim]
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._query_cache: dict[str, np.ndarray] = {}
        self.cache_seconds = 0.0
        self._build_lexicon()

    @property
    def uses_encoder(self) -> bool:
        """False when matching is purely lexical (``lexical_weight == 1``): no model is loaded."""
        return self.lexical_weight < 1.0

    @property
    def identity(self) -> str:
        """What a localization depends on; the KB tags stored localizations with it."""
        return f"{self.encoder.identity}|{self.fingerprint[:16]}|lex{self.lexical_weight:g}"

    @property
    def cache_path(self) -> Path:
        name = hashlib.sha256(f"{self.encoder.identity}|{self.fingerprint}".encode()).hexdigest()[:24]
        return self.cache_dir / f"items-{name}.npy"

    # ----------------------------------------------------------------- lexical
    def _build_lexicon(self) -> None:
        documents = [set(words(item.describe())) for item in self.catalogue.items[1:]]
        frequency = Counter(word for document in documents for word in document)
        n = len(documents)
        self._idf = {word: math.log((n + 1) / (count + 1)) + 1.0 for word, count in frequency.items()}
        self._unseen_idf = math.log(n + 1) + 1.0
        # word -> item positions (0-based, item index - 1) holding it
        postings: dict[str, list[int]] = {}
        for position, document in enumerate(documents):
            for word in document:
                postings.setdefault(word, []).append(position)
        self._postings = {w: np.asarray(p, dtype=np.int64) for w, p in postings.items()}

    def lexical_scores(self, text: str) -> np.ndarray:
        """``[n_items]``: IDF mass of the text's words an item has, over the text's total."""
        scores = np.zeros(len(self.catalogue), dtype=np.float32)
        query = set(words(text))
        if not query:
            return scores
        total = sum(self._idf.get(w, self._unseen_idf) for w in query)
        for word in query:
            if word in self._postings:
                scores[self._postings[word]] += self._idf[word]
        return scores / total

    # ----------------------------------------------------------------- encoder
    def ensure_item_vectors(self) -> None:
        """Load the cached item vectors, or encode the catalogue and cache them."""
        with self._lock:
            if self._vectors is not None:
                return
            started = time.perf_counter()
            raw = self._read_cache()
            if raw is None:
                raw = self.encoder.encode([item.describe() for item in self.catalogue.items[1:]])
                _atomic_save(self.cache_path, raw)
            self._mean = raw.mean(axis=0)
            self._scale = raw.std(axis=0) + 1e-6
            self._vectors = self._standardize(raw)
            self.cache_seconds = time.perf_counter() - started

    def _read_cache(self) -> np.ndarray | None:
        try:
            raw = np.load(self.cache_path, allow_pickle=False)
        except (OSError, ValueError):
            return None   # missing or damaged: recompute
        if raw.ndim != 2 or raw.shape[0] != len(self.catalogue) or not np.isfinite(raw).all():
            return None
        return raw.astype(np.float32)

    def _standardize(self, raw: np.ndarray) -> np.ndarray:
        centred = (raw - self._mean) / self._scale
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        return (centred / np.maximum(norms, 1e-12)).astype(np.float32)

    def encoder_scores(self, text: str) -> np.ndarray:
        """``[n_items]`` cosine similarities (clipped at 0) of the text and each item."""
        self.ensure_item_vectors()
        vector = self._query_cache.get(text)
        if vector is None:
            vector = self._standardize(self.encoder.encode([text]))[0]
            self._query_cache[text] = vector
        return np.maximum(self._vectors @ vector, 0.0)

    # ------------------------------------------------------------------ result
    def rank(self, text: str, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best ``(catalogue index, weight)`` for ``text``, best first.

        Ties go to the lower index, so the ranking is reproducible.
        """
        weight = self.lexical_weight
        scores = weight * self.lexical_scores(text)
        if self.uses_encoder:
            scores = scores + (1.0 - weight) * self.encoder_scores(text)
        limit = min(limit, len(scores))
        order = np.lexsort((np.arange(len(scores)), -scores))[:limit]
        return [(int(i) + 1, round(float(scores[i]), 4)) for i in order]

    def localize(self, text: str, r: int, exclude: set[int] | frozenset[int] = frozenset(),
                 ranked: list[tuple[int, float]] | None = None) -> list[tuple[int, float]]:
        """Top-``r`` items for ``text`` that are not in ``exclude`` (e.g. the session window).

        ``ranked`` is a stored :meth:`rank` result to filter instead of recomputing.
        """
        ranked = ranked if ranked is not None else self.rank(text, r + len(exclude))
        return [(index, w) for index, w in ranked if index not in exclude and w > 0][:r]


def open_localizer(catalogue: Catalogue, config: ReasoningConfig,
                   llm_model_path: Path | None = None,
                   cache_dir: Path | None = None) -> IntentLocalizer:
    """The localizer the config describes; the encoder GGUF defaults to the LLM's own file.

    ``cache_dir`` overrides where item vectors are cached (``config.embeddings_dir``).
    """
    if config.encoder_model_path:
        path = Path(config.encoder_model_path).expanduser()
    elif llm_model_path is not None:
        path = llm_model_path
    else:
        from reasoning.llama_backend import resolve_model_path

        path = resolve_model_path(config)
    cache_dir = cache_dir or config.embeddings_dir
    encoder = GGUFTextEncoder(path, config.threads, cache_dir)
    return IntentLocalizer(catalogue, encoder, cache_dir, config.lexical_weight)
