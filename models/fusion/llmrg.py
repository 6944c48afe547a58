"""LLMRG's fusion (Wang et al., AAAI 2024, arXiv 2308.10835).

The reasoning graph G_rea (session items, chains weighted by verification)
and the divergent graph G_div (chain ends, intents, localized candidates) are
each encoded by an SR-GNN-style gated graph encoder into E_ori and E_div; the
paper concatenates them with the base model's embedding E_base and predicts
the next item from the fused embedding. Here: ``[E_ori; E_div; E_base]`` ->
linear -> dot with the (shared) item table, see :class:`ConcatFusion`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx
from torch import Tensor, nn

from models.encoders.gated_graph import GatedGraphEncoder
from models.explain_removal import Removal
from models.fusion.base import ConcatFusion
from models.fusion.registry import StrategyKind
from models.fusion.strategy import (ModelInput, Need, RemovableKind, StrategyContext,
                                    StrategySpec, removed_pair)
from models.graph_data import GraphOptions, GraphPair, IntentIndex, reasoning_pair

if TYPE_CHECKING:
    from models.fusion.samples import UserGraph

ORI, DIV = "ori", "div"


class LLMRGFusion(ConcatFusion):
    """Base recommender + reasoning graph + divergent graph.

    Args:
        n_items: real items (indices ``1..n_items``).
        base_dim: size of E_base.
        dim: item table / encoder size (default ``base_dim``).
        steps: gated propagation steps of both encoders.
        intent_vectors: frozen intent table ``[len(IntentIndex), text_dim]``
            (#3's text-encoder vectors, ``models.graph_data.cached_intent_table``),
            projected inside the G_div encoder (G_rea has no intent nodes); a
            buffer, so it is saved in the state dict.
        num_intents: rows of the intent table. With ``text_dim`` and no
            ``intent_vectors``: a zero frozen table that ``load_state_dict``
            fills (a saved run is rebuilt from its JSON arguments this way);
            with neither, a learned intent table of this size.
        text_dim: width of the frozen intent table (0: none).
        share_encoder: one encoder (same weights) for G_rea and G_div instead of two.
        item_init: initial item table ``[n_items + 1, dim]`` (the base model's).
        identity_init: start as the base model (see :class:`ConcatFusion`).

    Shapes:
        ``forward(e_base [B, base_dim], {"ori": Batch, "div": Batch}, zero) ->
        [B, n_items + 1]``; branches ``("ori", "div", "base")``.
    """

    name = "llmrg"

    def __init__(self, n_items: int, base_dim: int, *, dim: int | None = None, steps: int = 1,
                 intent_vectors: Tensor | None = None, num_intents: int = 0, text_dim: int = 0,
                 share_encoder: bool = False, item_init: Tensor | None = None,
                 identity_init: bool = True) -> None:
        def encoders(items: nn.Embedding) -> dict[str, nn.Module]:
            div = GatedGraphEncoder(items, steps=steps, intent_vectors=intent_vectors,
                                    num_intents=num_intents, text_dim=text_dim)
            # G_rea has no intent nodes: its own encoder needs no intent table.
            ori = div if share_encoder else GatedGraphEncoder(items, steps=steps)
            return {ORI: ori, DIV: div}

        super().__init__(n_items, base_dim, encoders=encoders, dim=dim, item_init=item_init,
                         identity_init=identity_init)

    @staticmethod
    def sample_inputs(pair: GraphPair) -> dict[str, Any]:
        """Per-sample inputs (for :meth:`collate`) of one reasoning graph pair."""
        return {ORI: pair.rea, DIV: pair.div}

    def pair_inputs(self, pairs: list[GraphPair]) -> Mapping[str, Any]:
        """Batched :meth:`forward` inputs of reasoning graph pairs."""
        return self.collate([self.sample_inputs(p) for p in pairs])


class LLMRGSpec(StrategySpec):
    """LLMRG's inputs: the reasoning graph pair (G_rea, G_div) and the intent table.

    Options are :class:`models.graph_data.GraphOptions` (the ablations:
    ``verification``, ``divergent``...). Every part of the reasoning graph can
    be removed in a counterfactual: chains, intents and candidates, chain and
    diverge edges, and session items (which also change E_base).
    """

    kind = StrategyKind.LLMRG
    needs = frozenset({Need.SESSION, Need.REASONING_GRAPH, Need.INTENT_TABLE})
    removable = frozenset(RemovableKind)

    @classmethod
    def model_class(cls) -> type[LLMRGFusion]:
        return LLMRGFusion

    def parse_options(self, raw: Mapping[str, Any]) -> GraphOptions:
        known = {f.name for f in dataclasses.fields(GraphOptions)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown llmrg option(s) {unknown}; known: {sorted(known)}")
        return GraphOptions(**raw)

    def sample_inputs(self, user: UserGraph, step: int, options: GraphOptions) -> dict[str, Any]:
        return LLMRGFusion.sample_inputs(reasoning_pair(user.graph, user.intents, step, options))

    def model_kwargs(self, context: StrategyContext, options: GraphOptions) -> dict[str, Any]:
        """``steps``, ``num_intents`` and, with a text-encoder table, ``text_dim`` and the
        frozen ``intent_vectors`` (a buffer: ``fusion.json`` keeps only its shape)."""
        kwargs: dict[str, Any] = {"steps": context.gnn_steps,
                                  "num_intents": len(context.intents)}
        table = context.intent_table
        if table is not None:
            if table.ndim != 2 or table.shape[0] != len(context.intents):
                raise ValueError(f"intent_table must be [{len(context.intents)}, text_dim], got "
                                 f"{tuple(table.shape)}")
            kwargs["text_dim"] = int(table.shape[1])
            kwargs["intent_vectors"] = table
        return kwargs

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: GraphOptions) -> ModelInput:
        pair = removed_pair(graph, intents, step, removal, options)
        return ModelInput(tuple(pair.session), LLMRGFusion.sample_inputs(pair))
