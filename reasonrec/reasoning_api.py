"""What the app uses of the reasoning layer: the one seam between ``app/`` and ``reasoning/``.

The app never imports ``reasoning.*`` (an import-linter contract in
``pyproject.toml``); it opens the builder, the knowledge base and the graph
store here, reads the typed results and errors named here, and cuts graphs
to a point with :func:`prefix_graph`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoning.backend import LLMError, LLMTimeout, ModelFileError
from reasoning.backend_info import BackendInfo, BackendKind
from reasoning.config import MODEL_INSTALL_HINT, ReasoningConfig
from reasoning.graph import EdgeKind, GraphFormatError, NodeKind, prefix_graph
from reasoning.kb import KnowledgeBase, KnowledgeBaseError
from reasoning.store import GraphStore, GraphStoreError

if TYPE_CHECKING:
    from models.data import Dataset
    from reasoning.builder import EmptySessionError, GraphBuilder, session_window

#: Names from the builder's module, imported on first use: it pulls in the LLM stack's
#: modules (about 2 s), which pages that only show a graph need not wait for.
_BUILDER_NAMES = ("EmptySessionError", "GraphBuilder", "session_window")


def __getattr__(name: str) -> object:
    if name in _BUILDER_NAMES:
        from reasoning import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["BackendInfo", "BackendKind", "EdgeKind", "EmptySessionError", "GraphFormatError",
           "GraphStore",
           "GraphStoreError", "KnowledgeBase", "KnowledgeBaseError", "LLMError", "LLMTimeout",
           "MODEL_INSTALL_HINT", "ModelFileError", "NodeKind", "graph_store", "knowledge_base",
           "open_builder", "prefix_graph", "session_window"]


def open_builder(dataset: Dataset, config: ReasoningConfig) -> GraphBuilder:
    """The LLMRG builder for ``dataset`` with ``config``'s backend, knowledge base and
    localizer (loads the LLM and the text encoder: seconds)."""
    from reasoning.builder import open_builder as _open

    return _open(dataset, config)


def graph_store(config: ReasoningConfig) -> GraphStore:
    """The store of built graphs in ``config``'s data directory."""
    return GraphStore(config.graphs_dir)


def knowledge_base(config: ReasoningConfig) -> KnowledgeBase:
    """The knowledge base at ``config.kb_path`` (KnowledgeBaseError: unreadable)."""
    return KnowledgeBase(config.kb_path)
