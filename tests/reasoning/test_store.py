"""The graph store: atomic per-user files, resume checks, and what issue #4 reads."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reasoning.graph import GraphFormatError, graph_to_json
from reasoning.store import GraphStore, GraphStoreError
from tests.reasoning.test_graph import small_graph


def _graph(key: str = "k1"):
    graph = small_graph()
    graph.graph["build_log"].settings = {"key": key}
    return graph


def test_save_load_and_resume_check(tmp_path: Path) -> None:
    store = GraphStore(tmp_path / "graphs")
    assert store.load("u1") is None and not store.is_done("u1", "k1")
    path = store.save(_graph())
    assert path.name == "u1.json.gz" and store.users() == ["u1"]
    assert graph_to_json(store.load("u1")) == graph_to_json(_graph())
    assert store.is_done("u1", "k1")
    assert not store.is_done("u1", "k2")   # built with other settings: rebuild
    assert [p.name for p in path.parent.iterdir()] == ["u1.json.gz"]   # no temporary file left


def test_a_damaged_file_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    store = GraphStore(tmp_path)
    store.save(_graph())
    (tmp_path / "u1.json.gz").write_bytes(gzip.compress(b'{"schema": "x"}'))
    with pytest.raises(GraphFormatError, match="u1.json.gz"):
        store.load("u1")
    assert not store.is_done("u1", "k1")


def test_leftover_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    (tmp_path / ".u1.json.gz.abc.tmp").write_bytes(b"half a graph")
    GraphStore(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_user_ids_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(GraphStoreError, match="cannot name a graph file"):
        GraphStore(tmp_path).path("../etc/passwd")


def test_one_dataset_per_store(tmp_path: Path) -> None:
    store = GraphStore(tmp_path)
    store.claim("ml-100k", {"key": "k1"})
    store.claim("ml-100k", {"key": "k2"})   # new settings: fine, stale graphs get rebuilt
    assert store.manifest() == {"dataset": "ml-100k", "settings": {"key": "k2"}}
    with pytest.raises(GraphStoreError, match="another"):
        store.claim("other-data", {"key": "k1"})


def test_issue_4_reads_the_store_as_a_directory_source(tmp_path: Path) -> None:
    """models.graph_sources reads what build-graphs writes, unchanged."""
    from models.graph_sources import DirectoryGraphSource

    store = GraphStore(tmp_path)
    store.claim("toy", {"key": "k1"})
    store.save(_graph())
    source = DirectoryGraphSource(tmp_path)
    assert source.users() == ["u1"]
    assert graph_to_json(source.get("u1")) == graph_to_json(_graph())


def test_write_atomic_gives_the_mode_a_plain_write_would(tmp_path) -> None:
    import os

    from reasoning.store import write_atomic

    target = tmp_path / "report.html"
    write_atomic(target, b"<html></html>")
    plain = tmp_path / "plain.html"
    plain.write_bytes(b"x")
    assert target.read_bytes() == b"<html></html>"
    assert os.stat(target).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
