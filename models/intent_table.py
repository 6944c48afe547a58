"""The intent table of the fused models: which text each row holds, and its encoder vectors, cached.

Row 0 is the zero row unknown intent texts read; then the vocabulary labels and
every divergent intent text of the training graphs (:meth:`IntentIndex.from_graphs`),
in a fixed order. :func:`cached_intent_table` encodes them once with #3's text
encoder and keeps the raw vectors on disk, keyed by the encoder and the texts.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import networkx as nx
import numpy as np
import torch

from models.data.atomic import write_atomic
from reasoning.graph_nodes import intents


class TextEncoder(Protocol):
    """What the intent table needs of #3's text encoder (``reasoning.sentence_encoder.SentenceEncoder``).

    Attributes:
        identity: names the weights and pooling; vectors are cached under it.
    """

    identity: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), text_dim]`` float vectors."""
        ...


INTENT_TABLE_VERSION = "intent-table-v1"   # bump when the table's layout changes: renames caches


def intent_texts(graphs: Iterable[nx.DiGraph]) -> set[str]:
    """The texts of every ``intent`` node of ``graphs`` (the LLM's divergent intents)."""
    return {i.text for graph in graphs for i in intents(graph) if i.text}


class IntentIndex:
    """Rows of the intent-embedding table: row 0 for unknown texts, then ``labels`` in order.

    The table itself (text-encoder vectors of #3, ``[len(self), text_dim]``) is
    built by :meth:`table` (or :func:`cached_intent_table`) and passed to the
    encoder, which projects it. A text outside the index (a graph the app
    builds live, after the model was trained) reads row 0, a zero vector: the
    intent node then carries only its kind embedding, as a node without text.
    The row order is part of a trained model: a saved run keeps its index
    (:meth:`to_json`) next to the table in its state dict.

    Args:
        labels: the intent texts, e.g. ``reasoning.prompts.load_intents().labels``;
            duplicates collapse onto their first row.
    """

    def __init__(self, labels: Iterable[str]) -> None:
        self.labels: tuple[str, ...] = tuple(dict.fromkeys(labels))
        self._rows = {label: row for row, label in enumerate(self.labels, start=1)}

    @classmethod
    def from_graphs(cls, labels: Iterable[str], graphs: Iterable[nx.DiGraph]) -> IntentIndex:
        """The vocabulary ``labels`` in order, then every other intent text of ``graphs``, sorted.

        Sorting (not first-seen order) makes the rows depend only on the set of
        texts, whatever order the graphs are read in.
        """
        labels = tuple(labels)
        known = set(labels)
        return cls([*labels, *sorted(intent_texts(graphs) - known)])

    def __len__(self) -> int:
        return len(self.labels) + 1

    def __getitem__(self, text: str | None) -> int:
        # Intents outside the index (a live graph, a newer vocabulary, a
        # hand-edited graph) share the unknown row instead of failing a batch.
        return self._rows.get(text, 0) if text is not None else 0

    def __contains__(self, text: object) -> bool:
        return text in self._rows

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntentIndex) and other.labels == self.labels

    def __hash__(self) -> int:
        return hash(self.labels)

    def unknown(self, graph: nx.DiGraph) -> list[str]:
        """Intent texts of ``graph`` that have no row (they read row 0), sorted."""
        return sorted(intent_texts([graph]) - set(self._rows))

    def digest(self) -> str:
        """sha256 of the texts in row order: names this exact index (caches, fingerprints)."""
        return hashlib.sha256(json.dumps(list(self.labels)).encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON form (row order kept) for saved runs; :meth:`from_json` reads it back."""
        return {"labels": list(self.labels), "digest": self.digest()}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> IntentIndex:
        """The index :meth:`to_json` wrote; ValueError when its digest does not match."""
        index = cls(value["labels"])
        if len(index.labels) != len(value["labels"]) or (
                "digest" in value and value["digest"] != index.digest()):
            raise ValueError("intent index is damaged: its labels do not match their digest")
        return index

    def table(self, encode: Callable[[list[str]], torch.Tensor | np.ndarray]) -> torch.Tensor:
        """The intent table: ``encode(labels)`` (``[n, text_dim]``) under a zero row 0.

        Shapes:
            returns ``[len(self), text_dim]`` float.
        """
        vectors = torch.as_tensor(encode(list(self.labels)), dtype=torch.float32)
        return _with_unknown_row(vectors, len(self.labels))


def _with_unknown_row(vectors: torch.Tensor, rows: int) -> torch.Tensor:
    if vectors.ndim != 2 or vectors.shape[0] != rows:
        raise ValueError(f"encode must return [{rows}, dim], got {tuple(vectors.shape)}")
    if not torch.isfinite(vectors).all():
        raise ValueError("the text encoder returned non-finite intent vectors")
    return torch.cat([vectors.new_zeros(1, vectors.shape[1]), vectors])


def standardize_vectors(raw: torch.Tensor) -> torch.Tensor:
    """Per-dimension z-scores over the rows, scaled by ``1/sqrt(text_dim)`` (rows ~unit norm).

    Raw encoder states can have a few dimensions with huge activations in
    every text (the GGUF hidden states the first fused runs used did); fed raw
    through the projection they would swamp the item features of G_div and
    make all intents look alike. Centring also removes what every intent text
    shares. Statistics come from the index's own texts, and the result is
    frozen with the run, so a run's table never changes under it.

    Shapes:
        ``raw [n, text_dim]`` -> ``[n, text_dim]``.
    """
    if raw.shape[0] == 0:
        return raw
    centred = raw - raw.mean(dim=0, keepdim=True)
    scale = raw.std(dim=0, unbiased=False, keepdim=True) + 1e-6
    return centred / scale / math.sqrt(raw.shape[1])


def intent_cache_path(index: IntentIndex, encoder_identity: str, cache_dir: Path) -> Path:
    """Where :func:`cached_intent_table` keeps ``index``'s vectors for this encoder."""
    key = f"{INTENT_TABLE_VERSION}|{encoder_identity}|{index.digest()}"
    return Path(cache_dir) / f"intents-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"


def cached_intent_table(index: IntentIndex, encoder: TextEncoder, cache_dir: Path,
                        log: Callable[[str], None] | None = None) -> torch.Tensor:
    """:meth:`IntentIndex.table` of ``encoder``, cached as ``.npy`` under ``cache_dir``.

    The file is keyed by the encoder's identity (weights and pooling) and the
    texts' digest (row order included) and written atomically, so it is whole
    or absent; a second run reads it and never calls ``encoder.encode``, which
    for :class:`reasoning.sentence_encoder.SentenceEncoder` means transformers is
    never loaded. A damaged or mismatched file is recomputed.

    Args:
        index: the texts, in row order.
        encoder: #3's text encoder.
        cache_dir: e.g. ``ReasoningConfig.embeddings_dir`` (next to the item vectors).
        log: told how the table was obtained and how long it took.

    Shapes:
        returns ``[len(index), text_dim]`` float32: row 0 zeros, then the texts'
        vectors standardized (:func:`standardize_vectors`); the file keeps the raw ones.
    """
    path = intent_cache_path(index, encoder.identity, cache_dir)
    started = time.perf_counter()
    try:
        raw = np.load(path, allow_pickle=False)
        if raw.ndim != 2 or raw.shape[0] != len(index.labels) or not np.isfinite(raw).all():
            raw = None
    except (OSError, ValueError):
        raw = None   # missing or damaged: encode again
    if raw is not None:
        if log is not None:
            log(f"intent table: {len(index.labels)} texts read from {path} "
                f"({time.perf_counter() - started:.2f} s)")
        return _with_unknown_row(standardize_vectors(torch.from_numpy(raw.astype(np.float32))),
                                 len(index.labels))
    raw = np.asarray(encoder.encode(list(index.labels)), dtype=np.float32)
    # Checked before it is cached: a bad shape or a NaN must not be saved.
    _with_unknown_row(torch.from_numpy(raw), len(index.labels))
    table = _with_unknown_row(standardize_vectors(torch.from_numpy(raw)), len(index.labels))
    buffer = io.BytesIO()
    np.save(buffer, raw)
    write_atomic(path, buffer.getvalue())
    if log is not None:
        log(f"intent table: {len(index.labels)} texts encoded with {encoder.identity} in "
            f"{time.perf_counter() - started:.1f} s, cached at {path}")
    return table
