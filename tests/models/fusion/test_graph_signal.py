"""The candidate signal the fusion bench reports, against a direct count."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import Dataset
from models.fusion.graph_signal import candidate_signal, signal_sentence
from models.fusion.workspace import FusionWorkspace
from reasoning.graph import prefix_graph
from tests.models.fusion_setup import small_workspace


@pytest.fixture(scope="module")
def workspace(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> FusionWorkspace:
    return small_workspace(ml100k, tmp_path_factory.mktemp("runs"), users=12, epochs=1)


@pytest.mark.parametrize("role", ["train", "valid", "test"])
def test_signal_counts_match_the_prefix_graphs(workspace: FusionWorkspace, role: str) -> None:
    ranks = workspace.base_ranks(role)   # type: ignore[arg-type]
    signal = candidate_signal(workspace.points, ranks, role)   # type: ignore[arg-type]
    points = [workspace.points.points[i] for i in workspace.points.indices(role)]   # type: ignore[arg-type]
    hits = only = 0
    for point, rank in zip(points, ranks):
        graph = prefix_graph(point.user.graph, point.step)
        found = {a["item_index"] for _, a in graph.nodes(data=True)
                 if a["kind"] == "candidate_item"}
        hits += point.target in found
        only += point.target in found and rank >= len(found)
    assert signal.points == len(points) > 0
    assert signal.target_in_candidates == pytest.approx(hits / len(points))
    assert signal.only_in_candidates == pytest.approx(only / len(points))
    assert 0.0 <= signal.base_top_same_size <= 1.0


def test_wrong_rank_count_is_refused(workspace: FusionWorkspace) -> None:
    with pytest.raises(ValueError, match="base ranks for"):
        candidate_signal(workspace.points, workspace.base_ranks("test")[:-1], "test")


def test_the_sentence_names_the_test_figures(workspace: FusionWorkspace) -> None:
    signal = candidate_signal(workspace.points, workspace.base_ranks("test"), "test")
    text = signal_sentence([signal])
    assert f"{signal.target_in_candidates:.1%}" in text and "test points" in text
    assert signal_sentence([]) == ""
