"""What the app uses of the explanation layer: the typed results an explainer returns, and the
two graph look-ups a page needs beside them.

The app imports no ``models.*`` module (an import-linter contract in
``pyproject.toml``): it gets explainers from the facade
(:meth:`reasonrec.studio.Studio.fusion_workspace`) and reads their results through
the names here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.explain_schema import (BranchEffects, Counterfactual, DeletionCurve, Effect,
                                   EvidenceFact, EvidenceKind, Explanation, ExplanationPath,
                                   ItemExplanation, PathFlag, PathKind, PointInfo, RankedItem,
                                   TopK)
# What the counterfactual switches can turn off (chain ids; intent and candidate node ids).
from models.graph_edits import reasoning_elements

if TYPE_CHECKING:
    import networkx as nx

    from models.data import Dataset
    from models.fusion.samples import UserGraph
    from models.graph_data import IntentIndex

__all__ = ["BranchEffects", "Counterfactual", "DeletionCurve", "Effect", "EvidenceFact",
           "EvidenceKind", "Explanation", "ExplanationPath", "ItemExplanation", "PathFlag",
           "PathKind", "PointInfo", "RankedItem", "TopK", "place_graph", "reasoning_elements"]


def place_graph(dataset: Dataset, user: str, graph: nx.DiGraph,
                intents: IntentIndex) -> UserGraph:
    """A graph built on the Reasoning page, placed for an explainer whose intent rows are
    ``intents`` (``ValueError``: the graph is another user's or another window's)."""
    from models.fusion.samples import place_graph as place

    return place(dataset, user, graph, intents)
