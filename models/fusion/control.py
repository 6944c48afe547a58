"""The non-LLM control: SR-GNN on the plain session sequence graph, fused like LLMRG.

LLMRG reports that adding a graph encoder of the session alone already gives
part of its gain; every fusion table carries this row so that the reasoning
graph's own contribution is the difference to it. The graph is
:func:`models.graph_data.sequence_graph` of the same window: the same graph
G_rea becomes when every chain, intent and candidate is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
from torch import Tensor, nn

from models.encoders.gated_graph import GatedGraphEncoder
from models.explain_removal import Removal
from models.fusion.base import ConcatFusion
from models.fusion.registry import StrategyKind
from models.fusion.strategy import (ModelInput, Need, RemovableKind, StrategyContext,
                                    StrategySpec, removed_pair)
from models.graph_data import GraphOptions, IntentIndex, sequence_graph

if TYPE_CHECKING:
    from models.fusion.samples import UserGraph

SEQ = "seq"


class SequenceGraphControl(ConcatFusion):
    """Base recommender + gated graph encoder of the plain session graph.

    With one edge type, unit weights and one node kind its encoder is SR-GNN's.

    Args:
        n_items: real items (indices ``1..n_items``).
        base_dim: size of E_base.
        dim: item table / encoder size (default ``base_dim``).
        steps: gated propagation steps.
        item_init: initial item table ``[n_items + 1, dim]`` (the base model's).
        identity_init: start as the base model (see :class:`ConcatFusion`).

    Shapes:
        ``forward(e_base [B, base_dim], {"seq": Batch}, zero) -> [B, n_items + 1]``;
        branches ``("seq", "base")``.
    """

    name = "seqgraph"

    def __init__(self, n_items: int, base_dim: int, *, dim: int | None = None, steps: int = 1,
                 item_init: Tensor | None = None, identity_init: bool = True) -> None:
        def encoders(items: nn.Embedding) -> dict[str, nn.Module]:
            return {SEQ: GatedGraphEncoder(items, steps=steps, num_edge_types=1, num_node_kinds=1)}

        super().__init__(n_items, base_dim, encoders=encoders, dim=dim, item_init=item_init,
                         identity_init=identity_init)

    @staticmethod
    def sample_inputs(window: Sequence[int]) -> dict[str, Any]:
        """Per-sample inputs (for :meth:`collate`) of one session window."""
        return {SEQ: sequence_graph(window)}

    def window_inputs(self, windows: Sequence[Sequence[int]]) -> Mapping[str, Any]:
        """Batched :meth:`forward` inputs of session windows."""
        return self.collate([self.sample_inputs(w) for w in windows])


class SequenceGraphSpec(StrategySpec):
    """The control's input: the plain session graph of the window prefix; no options.

    Only session items can be removed in a counterfactual: the control never
    reads chains, intents or candidates, so removing them leaves its scores
    exactly as they were (which is what an explanation of it should show).
    """

    kind = StrategyKind.SEQGRAPH
    needs = frozenset({Need.SESSION})
    removable = frozenset({RemovableKind.SESSION_ITEM})

    @classmethod
    def model_class(cls) -> type[SequenceGraphControl]:
        return SequenceGraphControl

    def parse_options(self, raw: Mapping[str, Any]) -> None:
        if raw:
            raise ValueError(f"the sequence-graph control takes no options, got {sorted(raw)}")
        return None

    def sample_inputs(self, user: UserGraph, step: int, options: None) -> dict[str, Any]:
        return SequenceGraphControl.sample_inputs(user.window[: step + 1])

    def model_kwargs(self, context: StrategyContext, options: None) -> dict[str, Any]:
        return {"steps": context.gnn_steps}

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: None) -> ModelInput:
        # The session left after the removal, as the reasoning graph's removal
        # rules give it (the same session LLMRG's G_rea and E_base read).
        session = removed_pair(graph, intents, step, removal, GraphOptions()).session
        return ModelInput(tuple(session), SequenceGraphControl.sample_inputs(session))
