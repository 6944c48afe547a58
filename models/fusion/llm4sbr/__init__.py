"""LLM4SBR (Qiao et al., arXiv 2402.13840) as a fusion strategy: stage 2, the trained part.

**Not yet runnable end to end.** Stage 1, offline, is missing: for each
session window the local LLM infers a long-term and a short-term interest
(the paper's prompt, adapted to a small model, through the knowledge base),
each answer is localized to the top-r catalogue items with the sentence
encoder, and ``h = Σ w · e_item`` (r = 5) is stored per user and window step.
That needs LLM time per user and a store next to the graphs; until it exists
:class:`LLM4SBRSpec` declares the need (:attr:`Need.LLM_INTERESTS`), the
workspace refuses to build the strategy and names what is missing, and
nothing is faked. What is here: the model (:mod:`.model`: local/global views,
projected interests, gates, fusion), its losses (:mod:`.losses`) and the
registry entry. It has no bench rows yet (``models.fusion.registry.VARIANTS``):
add ``llm4sbr`` and ``llm4sbr-no-align`` (``{"align": False}``) there once
stage 1 ships its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from models.explain_removal import Removal
from models.fusion.llm4sbr.model import LLM4SBRFusion
from models.fusion.registry import StrategyKind
from models.fusion.strategy import ModelInput, Need, StrategyContext, StrategySpec
from models.graph_data import IntentIndex

if TYPE_CHECKING:
    from models.fusion.samples import UserGraph

#: Options a variant may set (``align`` False: the ablation without alignment).
OPTIONS = ("align", "tau")

MISSING_STAGE_1 = ("LLM4SBR's offline stage (long- and short-term interests per session "
                   "window, localized to catalogue items) is not built yet")


class LLM4SBRSpec(StrategySpec):
    """LLM4SBR's inputs: the session's last item and the two localized interest vectors."""

    kind = StrategyKind.LLM4SBR
    needs = frozenset({Need.SESSION, Need.LLM_INTERESTS})
    # Its explanation removes an interest by zeroing its branch (``branch_effects``);
    # graph removals would need the interests re-inferred without the item.
    removable = frozenset()

    @classmethod
    def model_class(cls) -> type[LLM4SBRFusion]:
        return LLM4SBRFusion

    def parse_options(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(raw) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown llm4sbr option(s) {unknown}; known: {list(OPTIONS)}")
        return dict(raw)

    def sample_inputs(self, user: UserGraph, step: int, options: Any) -> dict[str, Any]:
        raise ValueError(f"{MISSING_STAGE_1}: no interests for user {user.user_id}")

    def model_kwargs(self, context: StrategyContext, options: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(MISSING_STAGE_1)

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: Any) -> ModelInput:
        raise ValueError(MISSING_STAGE_1)
