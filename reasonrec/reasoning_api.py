"""What the app names of the reasoning layer: its typed results, kinds and errors.

The app never imports ``reasoning.*`` (an import-linter contract in
``pyproject.toml``): it opens the builder, the knowledge base and the graph
store through :class:`reasonrec.studio.Studio`, reads the types and errors
named here, cuts graphs to a point with :func:`prefix_graph`, and reads a
graph's nodes, edges and chains through the typed readers of
``reasoning.graph_nodes`` named here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoning.backend import LLMError, LLMTimeout, ModelFileError
from reasoning.backend_info import BackendInfo, BackendKind
from reasoning.config import MODEL_INSTALL_HINT
from reasoning.graph import ChainStatus, EdgeKind, GraphFormatError, NodeKind, prefix_graph
from reasoning.graph_nodes import (CandidateNode, IntentNode, SessionItemNode, candidates_of,
                                   chain_records, graph_edge, graph_edges, node_chain, node_kind,
                                   node_record, node_stage, session_items)
from reasoning.kb import KnowledgeBase, KnowledgeBaseError
from reasoning.store import GraphStore, GraphStoreError

if TYPE_CHECKING:
    from reasoning.builder import EmptySessionError, GraphBuilder, session_window

#: Names from the builder's module, imported on first use: it pulls in the LLM stack's
#: modules (about 2 s), which pages that only show a graph need not wait for.
_BUILDER_NAMES = ("EmptySessionError", "GraphBuilder", "session_window")


def __getattr__(name: str) -> object:
    if name in _BUILDER_NAMES:
        from reasoning import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["BackendInfo", "BackendKind", "CandidateNode", "ChainStatus", "EdgeKind",
           "EmptySessionError", "GraphFormatError", "GraphStore", "GraphStoreError",
           "IntentNode", "KnowledgeBase", "KnowledgeBaseError", "LLMError", "LLMTimeout",
           "MODEL_INSTALL_HINT", "ModelFileError", "NodeKind", "SessionItemNode",
           "candidates_of", "chain_records", "graph_edge", "graph_edges",
           "node_chain", "node_kind", "node_record", "node_stage", "prefix_graph", "session_items",
           "session_window"]
