"""Graph sources (directory, bundle, first-of, resolution) and the LLM-free genre graphs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from models.data import Dataset
from models.genre_graphs import GenreGraphSource
from models.graph_sources import (BundleGraphSource, DirectoryGraphSource, FirstGraphSource,
                                  GraphSource, resolve_source, shipped_bundle_path, write_bundle,
                                  write_graph_file)
from models.protocol import leave_one_out
from reasoning.graph import GraphFormatError, graph_to_json, prefix_graph
from tests.models.reasoning_graphs import example_graph, small_graphs


def users_graphs() -> list:
    graphs = []
    for n, graph in enumerate(small_graphs().values()):
        graph.graph["user"] = f"u{n}"
        graphs.append(graph)
    return graphs


def test_directory_source_round_trips_and_guards_file_names(tmp_path: Path) -> None:
    source = DirectoryGraphSource(tmp_path / "graphs")
    assert source.get("u0") is None and source.users() == []     # no directory yet: all missing
    for graph in users_graphs():
        write_graph_file(tmp_path / "graphs", graph)
    assert source.users() == ["u0", "u1", "u2", "u3"]
    assert graph_to_json(source.get("u0")) == graph_to_json(users_graphs()[0])
    assert isinstance(source, GraphSource)
    graph = example_graph()
    graph.graph["user"] = "u9"
    with gzip.open(tmp_path / "graphs" / "u9.json.gz", "wt") as handle:
        json.dump(graph_to_json(graph), handle)
    assert source.get("u9").graph["user"] == "u9"                 # read from .json.gz
    (tmp_path / "graphs" / "u6.json").write_text(json.dumps(graph_to_json(graph)))
    with pytest.raises(GraphFormatError, match="u6.json: holds the graph of user 'u9'"):
        source.get("u6")
    (tmp_path / "graphs" / "u8.json").write_text("{not json")
    with pytest.raises(GraphFormatError, match="u8.json: not a readable graph document"):
        source.get("u8")
    (tmp_path / "graphs" / "u7.json").write_text(json.dumps({"schema": "other", "version": 1}))
    with pytest.raises(GraphFormatError, match="u7.json: not a reasonrec.reasoning-graph"):
        source.get("u7")
    for bad in ("../etc/passwd", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="cannot name a graph file"):
            source.get(bad)


def test_bundle_round_trip_and_corruption(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b.jsonl.gz", users_graphs(), {"model": "test"})
    first = path.read_bytes()
    assert write_bundle(path, users_graphs(), {"model": "test"}).read_bytes() == first  # stable
    bundle = BundleGraphSource(path)
    assert bundle.users() == ["u0", "u1", "u2", "u3"] and bundle.header["meta"] == {"model": "test"}
    for graph in users_graphs():
        assert graph_to_json(bundle.get(graph.graph["user"])) == graph_to_json(graph)
    assert bundle.get("nobody") is None
    lines = gzip.decompress(first).decode().splitlines()
    with gzip.open(tmp_path / "short.jsonl.gz", "wt") as handle:
        handle.write("\n".join(lines[:-1]) + "\n")
    with pytest.raises(GraphFormatError, match="lists 4 users but the bundle has 3 graphs"):
        BundleGraphSource(tmp_path / "short.jsonl.gz").get("u0")
    broken = lines[:2] + ['{"schema": "reasonrec.reasoning-graph", "version": 1}'] + lines[3:]
    with gzip.open(tmp_path / "broken.jsonl.gz", "wt") as handle:
        handle.write("\n".join(broken) + "\n")
    assert BundleGraphSource(tmp_path / "broken.jsonl.gz").get("u0") is not None
    with pytest.raises(GraphFormatError, match="broken.jsonl.gz:3: invalid graph document"):
        BundleGraphSource(tmp_path / "broken.jsonl.gz").get("u1")
    (tmp_path / "plain.jsonl.gz").write_text("not gzip")
    with pytest.raises(GraphFormatError, match="not a gzip text bundle"):
        BundleGraphSource(tmp_path / "plain.jsonl.gz").users()
    with pytest.raises(FileNotFoundError, match="reasonrec fusion bundle"):
        BundleGraphSource(tmp_path / "missing.jsonl.gz").get("u0")
    with pytest.raises(ValueError, match="repeated users"):
        write_bundle(tmp_path / "x.jsonl.gz", [example_graph(), example_graph()])
    with pytest.raises(ValueError, match="no graphs"):
        write_bundle(tmp_path / "x.jsonl.gz", [])


def test_resolution_and_first_source(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_graph_file(store, users_graphs()[0])
    bundle = write_bundle(tmp_path / "b.jsonl.gz", users_graphs()[1:])

    def genre() -> GraphSource:
        raise AssertionError("only built for 'genre'")

    def resolve(spec: str) -> GraphSource:
        return resolve_source(spec, dataset_name="toy", store_dir=store, genre=genre)

    assert isinstance(resolve("store"), DirectoryGraphSource)
    assert isinstance(resolve(str(store)), DirectoryGraphSource)
    assert isinstance(resolve(str(bundle)), BundleGraphSource)
    # No bundle ships for "toy": auto is the store alone, "bundle" is an error.
    assert not shipped_bundle_path("toy").exists()
    assert isinstance(resolve("auto"), DirectoryGraphSource)
    with pytest.raises(FileNotFoundError, match="no shipped graph bundle for toy"):
        resolve("bundle")
    with pytest.raises(FileNotFoundError, match="not auto/store/bundle/genre"):
        resolve(str(tmp_path / "nowhere"))
    with pytest.raises(AssertionError, match="only built"):
        resolve("genre")
    first = FirstGraphSource(DirectoryGraphSource(store), BundleGraphSource(bundle))
    assert first.get("u0").graph["user"] == "u0" and first.get("u3").graph["user"] == "u3"
    assert first.get("u9") is None and "then bundle b.jsonl.gz" in first.label


def test_genre_graphs_follow_the_schema_on_real_users(ml100k: Dataset) -> None:
    split = leave_one_out(ml100k)
    source = GenreGraphSource(ml100k, split.train, window=10)
    n_items = ml100k.n_items
    for user_id in ml100k.user_ids[:40]:
        graph = source.get(user_id)
        graph_to_json(graph)                                    # schema-valid
        history = ml100k.history(user_id)
        assert graph.graph["window"] == history[-11:-1].tolist()
        assert graph.graph["target"] == int(history[-1])
        assert graph.graph["target_position"] == len(history) - 1
        steps = sorted(s for c in graph.graph["chains"] for s in c.steps)
        assert steps == list(range(10))                         # chains cover the window
        for chain in graph.graph["chains"]:
            assert chain.score is None or 0.0 <= chain.score <= 1.0
            for a, b in zip(chain.steps[:-1], chain.steps[1:]):   # neighbours included
                edge = graph.edges[f"s{a}", f"s{b}"]
                assert edge["kind"] == "chain" and edge["chain"] == chain.id
        for node, attrs in graph.nodes(data=True):
            if attrs["kind"] != "intent":
                assert 1 <= attrs["item_index"] <= n_items
            if attrs["kind"] == "candidate_item":
                # Only items unseen when the proposing chain ended, and present
                # in every prefix from that step on.
                seen = set(history[: len(history) - 11 + attrs["step"] + 1].tolist())
                assert attrs["item_index"] not in seen
                assert node in prefix_graph(graph, attrs["step"])
        for _, v, attrs in graph.edges(data=True):
            if attrs["kind"] == "diverge" and graph.nodes[v]["kind"] == "candidate_item":
                assert 0.0 < attrs["weight"] <= 1.0
    assert graph_to_json(source.get("1")) == graph_to_json(
        GenreGraphSource(ml100k, split.train).get("1"))           # deterministic
    assert source.get(ml100k.user_ids[0]).graph["build_log"].backend == {
        "backend": "genre-heuristic", "llm": False}
