"""Zero-shot LM ranking (Sileo et al., ECIR 2022; Hou et al., ECIR 2024) as a fusion strategy.

The best base model's top-N at each point is rescored by the local LLM's
per-token log-likelihood of each title after the user's recent titles
(built offline: ``reasonrec fusion lm-scores``, :mod:`reasoning.lm_scores`).
Two rows (``models.fusion.registry.VARIANTS``):

* ``lm-rerank``: the LM score interpolated with the base score, λ chosen on
  validation NDCG@10 over a grid (λ = 0, the base model, is the start);
* ``lm-only``: the LM score alone over the base top-N (λ = 1, nothing chosen).

Its input is :class:`~models.fusion.lm_rank.inputs.LMScoreProvider`'s (the
facade hands it to the workspace). Its counterfactuals remove nothing: the
scores were computed with the whole prompt; what each history title adds to a
candidate's likelihood is measured on demand with the LLM
(``reasonrec.lm_scores.history_effects``, ``reasonrec explain --strategy
lm-rerank``), and the branch effects say what the LM changes (zeroing ``lm``
gives the base ranking).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import networkx as nx

from models.explain_removal import Removal
from models.fusion.lm_rank.inputs import BUILD_COMMAND, UserLMScores
from models.fusion.lm_rank.model import (CANDIDATES, LM, SCORED, SCORES, LMRankFusion,
                                         weight_grid)
from models.fusion.registry import StrategyKind
from models.fusion.strategy import InputNote, ModelInput, Need, StrategyContext, StrategySpec
from models.graph_data import IntentIndex

if TYPE_CHECKING:
    from models.fusion.samples import UserGraph


class LMRankMode(str, Enum):
    """How the LM score is used."""

    RERANK = "rerank"   # interpolated with the base score, λ chosen on validation
    ONLY = "only"       # the LM score alone over the base top-N


@dataclass(frozen=True)
class LMRankOptions:
    """A variant's options.

    Attributes:
        mode: rerank or only.
        grid_step: the λ grid's step (rerank).
    """

    mode: LMRankMode = LMRankMode.RERANK
    grid_step: float = 0.05

    def weights(self) -> tuple[float, ...]:
        return weight_grid(self.grid_step) if self.mode is LMRankMode.RERANK else (1.0,)


class LMRankSpec(StrategySpec):
    """LM ranking's inputs: the point's candidates and their stored LM scores."""

    kind = StrategyKind.LM_RANK
    needs = frozenset({Need.SESSION, Need.LM_SCORES})
    # The scores were computed with the whole prompt: removing a history item would
    # need new LLM calls (``reasonrec.lm_scores.history_effects`` measures that).
    removable = frozenset()

    @classmethod
    def model_class(cls) -> type[LMRankFusion]:
        return LMRankFusion

    def parse_options(self, raw: Mapping[str, Any]) -> LMRankOptions:
        unknown = sorted(set(raw) - {"mode", "grid_step"})
        if unknown:
            raise ValueError(f"unknown lm-rank option(s) {unknown}; known: ['mode', 'grid_step']")
        try:
            options = LMRankOptions(mode=LMRankMode(raw.get("mode", LMRankMode.RERANK.value)),
                                    grid_step=float(raw.get("grid_step", 0.05)))
            options.weights()
        except ValueError as exc:
            raise ValueError(f"lm-rank options {dict(raw)}: {exc}") from None
        return options

    def sample_inputs(self, user: UserGraph, step: int, options: LMRankOptions) -> dict[str, Any]:
        scores = user.extras.get(Need.LM_SCORES)
        if not isinstance(scores, UserLMScores) or not scores.by_step:
            raise ValueError(f"user {user.user_id} has no LM scores (they cover the fusion "
                             f"sample; build them with `{BUILD_COMMAND}`)")
        if step not in scores.by_step:
            if user.role(step) != "train":
                raise ValueError(f"user {user.user_id} has no LM scores at step {step}; "
                                 f"build them with `{BUILD_COMMAND}`")
            # Training points are not scored: λ is chosen on validation, nothing is trained.
            size = len(next(iter(scores.by_step.values()))[0])
            return {CANDIDATES: [0] * size, SCORES: [0.0] * size, SCORED: False}
        candidates, lm = scores.by_step[step]
        return {CANDIDATES: list(candidates), SCORES: list(lm), SCORED: True}

    def describe_inputs(self, user: UserGraph, step: int,
                        options: LMRankOptions) -> list[InputNote]:
        """The LM's favourite candidates at the point (per-token log-likelihood as weight)."""
        inputs = self.sample_inputs(user, step, options)
        if not inputs[SCORED]:
            return []
        ranked = sorted(zip(inputs[CANDIDATES], inputs[SCORES]), key=lambda t: -t[1])
        return [InputNote(branch=LM, label="language model's likelihood after the recent films",
                          text=f"the base model's top {len(ranked)} films, scored by the LLM",
                          items=tuple((int(i), float(w)) for i, w in ranked[:5]))]

    def model_kwargs(self, context: StrategyContext, options: LMRankOptions) -> dict[str, Any]:
        return {"weights": list(options.weights())}

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: LMRankOptions) -> ModelInput:
        # Never called: with nothing removable the scorer reads sample_inputs.
        raise ValueError("LM ranking's scores cannot be recomputed without the LLM; "
                         "see reasonrec explain --strategy lm-rerank")
