"""What an explanation takes out of a user's reasoning graph: :class:`Removal`.

Shared by the explainer (scoring, paths, faithfulness) so each of those
modules can name a removal without importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasoning.graph import EdgeKind

#: Graph edges a removal may take out one by one (the window order goes with its items).
REASONING_EDGES = (EdgeKind.CHAIN, EdgeKind.DIVERGE)
Edge = tuple[str, str]


@dataclass(frozen=True)
class Removal:
    """What to take out of a user's graph at a point (ids checked by ``Explainer.removal``)."""

    chains: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    edges: tuple[Edge, ...] = ()

    def union(self, other: Removal) -> Removal:
        def merged(a: tuple, b: tuple) -> tuple:
            return tuple(dict.fromkeys((*a, *b)))
        return Removal(merged(self.chains, other.chains), merged(self.nodes, other.nodes),
                       merged(self.edges, other.edges))


NOTHING = Removal()
