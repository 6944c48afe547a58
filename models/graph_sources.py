"""Where the fused models get a user's reasoning graph from.

A :class:`GraphSource` answers ``get(user_id)`` with the reasoning graph of the
user's window before their test target (``reasoning/graph.py``'s schema), or
None when it has none. Sources:

* :class:`DirectoryGraphSource`: one ``<user>.json`` (or ``.json.gz``) graph
  document per user, the JSON round trip of ``reasoning.graph``;
  :func:`reasoning_store_source` points it at the reasoning builder's store
  (``ReasoningConfig.graphs_dir``) and is the one line to change if
  ``build-graphs`` settles on another layout;
* :class:`BundleGraphSource`: a compressed bundle of graph documents, one
  JSON line each after a header line. The graphs built with the default model
  for the fused sample ship as ``assets/graphs/<dataset>.jsonl.gz``
  (:func:`shipped_bundle_path`), so a first run, CI and tests need no LLM time.
  Rebuild it with ``reasonrec build-graphs`` (any GGUF, GPU when there is one)
  then ``reasonrec fusion bundle``; :func:`write_bundle` writes the file;
* :class:`FirstGraphSource`: the first of several sources that has the user;
* ``models.genre_graphs.GenreGraphSource``: an LLM-free stand-in.

Graph documents are untrusted input: a malformed one raises
``reasoning.graph.GraphFormatError`` naming the file or bundle line.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import networkx as nx

from models.data.atomic import write_atomic
from reasoning.graph import GraphFormatError, graph_from_json, graph_to_json

BUNDLE_SCHEMA = "reasonrec.graph-bundle"
BUNDLE_VERSION = 1
_SAFE_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")


@runtime_checkable
class GraphSource(Protocol):
    """Anything that returns a user's reasoning graph (None when it has none)."""

    def get(self, user_id: str) -> nx.DiGraph | None:
        """The reasoning graph of ``user_id``'s window before the test target, or None."""
        ...


def graph_backend(graph: nx.DiGraph) -> str:
    """What built ``graph``: its build log's ``backend`` (``llama``, ``http``,
    ``genre-heuristic``...), or ``unknown``."""
    backend = graph.graph["build_log"].backend
    return str(backend.get("backend") or "unknown")


def source_label(source: GraphSource) -> str:
    """A human-readable name of a source, for reports (its ``label`` attribute if any)."""
    return str(getattr(source, "label", type(source).__name__))


def _user_file_stem(user_id: str) -> str:
    user_id = str(user_id)
    # A user id becomes a file name: refuse anything that could leave the directory.
    if not _SAFE_USER.fullmatch(user_id):
        raise ValueError(f"user id {user_id!r} cannot name a graph file (letters, digits "
                         f"and _.@+- only)")
    return user_id


class DirectoryGraphSource:
    """Graph documents in a directory: ``<dir>/<user>.json`` or ``<dir>/<user>.json.gz``.

    Args:
        directory: the folder; it need not exist yet (then every user is missing).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()
        self.label = f"directory {self.directory}"

    def path(self, user_id: str) -> Path | None:
        """The user's graph file, or None."""
        stem = _user_file_stem(user_id)
        for name in (f"{stem}.json", f"{stem}.json.gz"):
            candidate = self.directory / name
            if candidate.is_file():
                return candidate
        return None

    def get(self, user_id: str) -> nx.DiGraph | None:
        path = self.path(user_id)
        if path is None:
            return None
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                payload = json.load(handle)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GraphFormatError(f"{path}: not a readable graph document: {exc}") from None
        try:
            graph = graph_from_json(payload)
        except GraphFormatError as exc:
            raise GraphFormatError(f"{path}: {exc}") from None
        if str(graph.graph["user"]) != str(user_id):
            raise GraphFormatError(f"{path}: holds the graph of user {graph.graph['user']!r}")
        return graph

    def users(self) -> list[str]:
        """User ids with a graph file, sorted."""
        if not self.directory.is_dir():
            return []
        names = {p.name.removesuffix(".gz").removesuffix(".json")
                 for p in self.directory.iterdir() if p.name.endswith((".json", ".json.gz"))}
        return sorted(names)


def write_graph_file(directory: Path | str, graph: nx.DiGraph) -> Path:
    """Write ``graph`` as ``<directory>/<user>.json`` atomically (what
    :class:`DirectoryGraphSource` reads)."""
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_user_file_stem(graph.graph['user'])}.json"
    write_atomic(path, json.dumps(graph_to_json(graph)).encode("utf-8"))
    return path


def reasoning_store_source(graphs_dir: Path | str) -> GraphSource:
    """The reasoning builder's graph store (``ReasoningConfig.graphs_dir``) as a source."""
    return DirectoryGraphSource(graphs_dir)


class BundleGraphSource:
    """A gzip JSON-lines bundle: a header line, then one graph document per line.

    The header is ``{"schema": "reasonrec.graph-bundle", "version": 1,
    "dataset", "users": [...], "meta": {...}}``. Lines are indexed on first
    use and parsed on demand, so opening a bundle of thousands of graphs is
    cheap and a bad line only fails the user it belongs to.

    Args:
        path: the ``.jsonl.gz`` file.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self.label = f"bundle {self.path.name}"
        self._lines: dict[str, tuple[int, str]] | None = None
        self.header: dict[str, Any] = {}

    def _index(self) -> dict[str, tuple[int, str]]:
        if self._lines is not None:
            return self._lines
        if not self.path.is_file():
            raise FileNotFoundError(f"graph bundle {self.path} not found; build it with "
                                    f"`reasonrec build-graphs` then `reasonrec fusion bundle`")
        try:
            with gzip.open(self.path, "rt", encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise GraphFormatError(f"{self.path}: not a gzip text bundle: {exc}") from None
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("schema") != BUNDLE_SCHEMA or header.get("version") != BUNDLE_VERSION:
            raise GraphFormatError(f"{self.path}:1: not a {BUNDLE_SCHEMA} v{BUNDLE_VERSION} "
                                   f"header")
        users = [str(u) for u in header.get("users", [])]
        if len(users) != len(lines) - 1:
            raise GraphFormatError(f"{self.path}: header lists {len(users)} users but the "
                                   f"bundle has {len(lines) - 1} graphs (truncated?)")
        self.header = header
        self._lines = {user: (number, line)
                       for number, (user, line) in enumerate(zip(users, lines[1:]), start=2)}
        return self._lines

    def users(self) -> list[str]:
        """User ids in the bundle, in bundle order."""
        return list(self._index())

    def get(self, user_id: str) -> nx.DiGraph | None:
        entry = self._index().get(str(user_id))
        if entry is None:
            return None
        number, line = entry
        try:
            graph = graph_from_json(json.loads(line))
        except (json.JSONDecodeError, GraphFormatError) as exc:
            raise GraphFormatError(f"{self.path}:{number}: {exc}") from None
        if str(graph.graph["user"]) != str(user_id):
            raise GraphFormatError(f"{self.path}:{number}: graph of user "
                                   f"{graph.graph['user']!r} listed as {user_id!r}")
        return graph


def write_bundle(path: Path | str, graphs: Iterable[nx.DiGraph],
                 meta: Mapping[str, Any] | None = None) -> Path:
    """Write graphs as a :class:`BundleGraphSource` bundle, atomically.

    Args:
        path: the ``.jsonl.gz`` file to write.
        graphs: reasoning graphs of distinct users, all of one dataset.
        meta: free-form provenance for the header (model, prompt versions, seed...).

    Raises:
        ValueError: no graphs, a repeated user, or mixed datasets.
    """
    documents = [graph_to_json(g) for g in graphs]
    if not documents:
        raise ValueError("no graphs to bundle")
    users = [str(d["user"]) for d in documents]
    if len(set(users)) != len(users):
        raise ValueError("a bundle holds one graph per user; repeated users given")
    datasets = {d["dataset"] for d in documents}
    if len(datasets) != 1:
        raise ValueError(f"a bundle holds one dataset; got {sorted(datasets)}")
    header = {"schema": BUNDLE_SCHEMA, "version": BUNDLE_VERSION, "dataset": datasets.pop(),
              "users": users, "meta": dict(meta or {})}
    path = Path(path).expanduser()
    lines = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in (header, *documents))
    # mtime=0: the same graphs give the same bytes, so a rebuilt bundle diffs clean.
    write_atomic(path, gzip.compress(lines.encode("utf-8"), mtime=0))
    return path


def shipped_bundle_path(dataset: str) -> Path:
    """Where the packaged bundle of ``dataset`` lives: ``assets/graphs/<dataset>.jsonl.gz``."""
    return Path(str(resources.files("assets").joinpath("graphs", f"{dataset}.jsonl.gz")))


class FirstGraphSource:
    """The first of ``sources`` that has the user's graph.

    Args:
        sources: consulted in order.
    """

    def __init__(self, *sources: GraphSource) -> None:
        if not sources:
            raise ValueError("FirstGraphSource needs at least one source")
        self.sources = sources
        self.label = " then ".join(source_label(s) for s in sources)

    def get(self, user_id: str) -> nx.DiGraph | None:
        for source in self.sources:
            graph = source.get(user_id)
            if graph is not None:
                return graph
        return None


def resolve_source(spec: str, *, dataset_name: str, store_dir: Path,
                   genre: Callable[[], GraphSource]) -> GraphSource:
    """The graph source a ``fusion.graphs`` setting names.

    Args:
        spec: ``auto`` (the reasoning store, then the shipped bundle when it
            exists), ``store``, ``bundle``, ``genre``, or a path: a directory of
            graph files or a ``.jsonl.gz`` bundle.
        dataset_name: picks the shipped bundle.
        store_dir: the reasoning builder's graph store.
        genre: builds the LLM-free stand-in (only called for ``genre``).

    Raises:
        FileNotFoundError: a path that does not exist, or ``bundle`` with no shipped bundle.
    """
    bundle = shipped_bundle_path(dataset_name)
    if spec == "genre":
        return genre()
    if spec == "store":
        return reasoning_store_source(store_dir)
    if spec == "bundle":
        if not bundle.is_file():
            raise FileNotFoundError(f"no shipped graph bundle for {dataset_name} at {bundle}")
        return BundleGraphSource(bundle)
    if spec == "auto":
        store = reasoning_store_source(store_dir)
        return FirstGraphSource(store, BundleGraphSource(bundle)) if bundle.is_file() else store
    path = Path(spec).expanduser()
    if path.is_dir():
        return DirectoryGraphSource(path)
    if path.is_file() and path.name.endswith(".jsonl.gz"):
        return BundleGraphSource(path)
    raise FileNotFoundError(f"graph source {spec!r}: not auto/store/bundle/genre, a directory "
                            f"of graph files or a .jsonl.gz bundle")
