"""Where ``reasonrec build-graphs`` keeps graphs: one gzip JSON file per user.

Layout (``ReasoningConfig.graphs_dir``, by default ``<data dir>/reasoning/graphs``)::

    graphs/
      .manifest            dataset and build settings of the graphs below (JSON; hidden
                           and without a .json suffix so it is never taken for a user)
      <user>.json.gz       the graph document of one user (reasoning.graph JSON)

What a graph covers (issue #4 reads it this way): the ``l_tru`` items right
before the user's ``loo`` test target ``h[-1]``, i.e. ``window =
h[-1 - len(window):-1]`` (``target_position`` on the graph is ``len(h) - 1``).
Every node and edge carries its window step, so for window step ``t`` the
prefix graph ``reasoning.graph.prefix_graph(g, t)`` predicts window item
``t + 1``: step ``L - 1`` (the whole graph) serves the test target, step
``L - 2`` the validation target ``h[-2]``, and smaller steps training targets.
``models.graph_sources.DirectoryGraphSource`` reads this directory as is.

Crash safety: a graph is written to a hidden temporary file in the same
directory, flushed to disk, then renamed over ``<user>.json.gz`` (atomic on
POSIX). A process killed at any point leaves either the previous file or the
new one, never a partial one; leftover temporary files are removed on the
next open. Resuming is a question per user: is there a readable graph built
with the current settings (``build_log.settings.key``)? If so the user is done.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import networkx as nx

from models.data.atomic import write_atomic  # noqa: F401  (re-exported: reasoning.store.write_atomic)
from reasoning.graph import GraphFormatError, graph_from_json, graph_to_json

MANIFEST = ".manifest"
SUFFIX = ".json.gz"
_SAFE_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")


class GraphStoreError(ValueError):
    """The store holds something the current build cannot use; the message says what to do."""


class GraphStore:
    """Per-user graph files of one dataset (see the module docstring).

    Args:
        directory: the store folder (created on first write).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()
        self._remove_partial()

    def _remove_partial(self) -> None:
        if self.directory.is_dir():
            for leftover in self.directory.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)

    def path(self, user: str) -> Path:
        user = str(user)
        # A user id becomes a file name: refuse anything that could leave the folder.
        if not _SAFE_USER.fullmatch(user):
            raise GraphStoreError(f"user id {user!r} cannot name a graph file "
                                  "(letters, digits and _.@+- only)")
        return self.directory / f"{user}{SUFFIX}"

    # ------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.directory / MANIFEST).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise GraphStoreError(f"{self.directory / MANIFEST}: unreadable ({exc}); delete it "
                                  "to rebuild the store") from None

    def claim(self, dataset: str, settings: dict[str, Any]) -> None:
        """Record that the store holds ``dataset`` graphs built with ``settings``.

        Raises:
            GraphStoreError: the store holds another dataset's graphs (user ids
                would collide); use another data directory.
        """
        current = self.manifest()
        if current is not None and current.get("dataset") != dataset:
            raise GraphStoreError(f"{self.directory} holds graphs of dataset "
                                  f"{current.get('dataset')!r}, not {dataset!r}; use another "
                                  "--data-dir or delete the folder")
        if current != {"dataset": dataset, "settings": settings}:
            write_atomic(self.directory / MANIFEST,
                         json.dumps({"dataset": dataset, "settings": settings}, indent=2).encode())

    # ---------------------------------------------------------------- graphs
    def save(self, graph: nx.DiGraph) -> Path:
        """Write a graph document atomically; returns its path."""
        path = self.path(graph.graph["user"])
        payload = json.dumps(graph_to_json(graph), separators=(",", ":")).encode("utf-8")
        # mtime=0: the same graph gives the same bytes.
        write_atomic(path, gzip.compress(payload, mtime=0))
        return path

    def load(self, user: str) -> nx.DiGraph | None:
        """The stored graph of ``user``, or ``None``.

        Raises:
            GraphFormatError: the file exists but is not a valid graph document.
        """
        path = self.path(user)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            payload = json.loads(gzip.decompress(raw).decode("utf-8"))
        except (OSError, EOFError, ValueError) as exc:
            raise GraphFormatError(f"{path}: not a readable graph document: {exc}") from None
        try:
            return graph_from_json(payload)
        except GraphFormatError as exc:
            raise GraphFormatError(f"{path}: {exc}") from None

    def is_done(self, user: str, settings_key: str) -> bool:
        """True when ``user`` has a readable graph built with ``settings_key``."""
        try:
            graph = self.load(user)
        except GraphFormatError:
            return False   # damaged by hand or by another tool: rebuild it
        return graph is not None and graph.graph["build_log"].settings.get("key") == settings_key

    def users(self) -> list[str]:
        """Users with a graph file, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.directory.glob(f"*{SUFFIX}")
                      if not p.name.startswith("."))
