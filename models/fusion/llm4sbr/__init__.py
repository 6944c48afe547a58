"""LLM4SBR (Qiao et al., arXiv 2402.13840) as a fusion strategy.

* **Stage 1, offline** (``reasoning.interests``, ``reasonrec fusion
  interests``): for each point of the fusion sample (a window prefix), the
  local LLM guesses one movie the viewer is interested in in the long term
  (the whole prefix) and in the short term (its last 3 items); each answer is
  localized to the top-r (5) catalogue items by the sentence encoder, weights
  normalized. :mod:`.inputs` turns them into ``h = Σ w · e_item`` (the items'
  text-encoder vectors) and provides them as :attr:`Need.LLM_INTERESTS`.
* **Stage 2, trained** (:mod:`.model`, :mod:`.losses`): local/global views,
  projected interests, alignment + uniformity, gates, fusion.

Rows ``llm4sbr`` and ``llm4sbr-no-align`` (``{"align": False}``) in
``models.fusion.registry.VARIANTS``. Its explanation: the two interests (text,
localized items with weights, :meth:`LLM4SBRSpec.describe_inputs`) and the
measured effect of zeroing each branch (``Explainer.branch_effects``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

from models.explain_removal import Removal
from models.fusion.inputs import MissingInputsError
from models.fusion.llm4sbr.inputs import PointInterests
from models.fusion.llm4sbr.model import LAST, LONG, SHORT, LLM4SBRFusion
from models.fusion.registry import StrategyKind
from models.fusion.strategy import InputNote, ModelInput, Need, StrategyContext, StrategySpec
from models.graph_data import IntentIndex

if TYPE_CHECKING:
    from models.fusion.samples import UserGraph

BUILD_COMMAND = "reasonrec fusion interests"


@dataclass(frozen=True)
class LLM4SBROptions:
    """A variant's options.

    Attributes:
        align: False is the ablation without alignment (gating only).
        tau: weight of the alignment + uniformity terms (the paper's 0.1).
    """

    align: bool = True
    tau: float = 0.1


class LLM4SBRSpec(StrategySpec):
    """LLM4SBR's inputs: the session's last item and the two localized interest vectors."""

    kind = StrategyKind.LLM4SBR
    needs = frozenset({Need.SESSION, Need.LLM_INTERESTS})
    # Nothing in a graph is removable: the interests were inferred from the whole
    # prefix (removing an item would need new LLM calls). Its explanation zeroes
    # each interest's branch instead (``branch_effects``).
    removable = frozenset()

    @classmethod
    def model_class(cls) -> type[LLM4SBRFusion]:
        return LLM4SBRFusion

    def parse_options(self, raw: Mapping[str, Any]) -> LLM4SBROptions:
        known = ("align", "tau")
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"unknown llm4sbr option(s) {unknown}; known: {list(known)}")
        align, tau = raw.get("align", True), raw.get("tau", 0.1)
        if not isinstance(align, bool):
            raise ValueError(f"llm4sbr option align must be true or false, got {align!r}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or tau < 0:
            raise ValueError(f"llm4sbr option tau must be a number >= 0, got {tau!r}")
        return LLM4SBROptions(align=align, tau=float(tau))

    @staticmethod
    def interests(user: UserGraph, step: int) -> PointInterests:
        """``user``'s provided interests at ``step`` (MissingInputsError names the command)."""
        provided = user.extras.get(Need.LLM_INTERESTS)
        if not provided or step not in provided:
            raise MissingInputsError(f"user {user.user_id} has no LLM4SBR interests at window "
                                     f"step {step}; build them with `{BUILD_COMMAND}`")
        return provided[step]

    def sample_inputs(self, user: UserGraph, step: int, options: LLM4SBROptions) -> dict[str, Any]:
        found = self.interests(user, step)
        return {LAST: user.window[step], LONG: found.long_vector, SHORT: found.short_vector}

    def model_kwargs(self, context: StrategyContext,
                     options: LLM4SBROptions) -> dict[str, Any]:
        provided = context.provided.get(Need.LLM_INTERESTS) or {}
        first = next((points for points in provided.values() if points), None)
        if first is None:
            raise MissingInputsError(f"no LLM4SBR interests were provided; build them with "
                                     f"`{BUILD_COMMAND}`")
        text_dim = int(next(iter(first.values())).long_vector.shape[0])
        return {"text_dim": text_dim, "tau": options.tau, "align": options.align}

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: LLM4SBROptions) -> ModelInput:
        # Never called: with nothing removable the scorer reads sample_inputs.
        raise ValueError("LLM4SBR's interests cannot be re-inferred without the LLM; its "
                         "explanation zeroes each interest instead")

    def describe_inputs(self, user: UserGraph, step: int,
                        options: LLM4SBROptions) -> list[InputNote]:
        found = self.interests(user, step)
        return [InputNote(branch=LONG, label="long-term interest", text=found.long.text,
                          items=found.long.items),
                InputNote(branch=SHORT, label="short-term interest", text=found.short.text,
                          items=found.short.items)]
