"""LLMRG's fusion (Wang et al., AAAI 2024, arXiv 2308.10835).

The reasoning graph G_rea (session items, chains weighted by verification)
and the divergent graph G_div (chain ends, intents, localized candidates) are
each encoded by an SR-GNN-style gated graph encoder into E_ori and E_div; the
paper concatenates them with the base model's embedding E_base and predicts
the next item from the fused embedding. Here: ``[E_ori; E_div; E_base]`` ->
linear -> dot with the (shared) item table, see :class:`ConcatFusion`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from models.encoders.gated_graph import GatedGraphEncoder
from models.fusion.base import ConcatFusion
from models.graph_data import GraphPair

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
