"""The fusion registry: every strategy kind, where its module is, and the bench's variants.

This module is plain data and imports nothing heavy, so validating a config
(``models.fusion.settings``) can name the variants without loading torch.

Adding a strategy is one module plus one entry here:

1. a module (or folder) with a :class:`models.fusion.base.FusionStrategy`
   (the trained part) and a :class:`models.fusion.strategy.StrategySpec`
   (its inputs, tensorizer, constructor arguments and counterfactuals);
2. a :class:`StrategyKind` member, its ``"module:SpecClass"`` in
   :data:`REGISTRY`, and its rows in :data:`VARIANTS`.

Nothing else (fitting, evaluation, the bench, ``explain``, the app) names a
strategy: they all go through the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class StrategyKind(str, Enum):
    """The fusion strategies (a ``str`` enum: saved runs store the plain value)."""

    LLMRG = "llmrg"
    SEQGRAPH = "seqgraph"
    LLM4SBR = "llm4sbr"
    LM_RANK = "lm-rank"


#: Each kind's spec as ``"module:Class"``, imported on first use.
REGISTRY: dict[str, str] = {
    StrategyKind.LLMRG.value: "models.fusion.llmrg:LLMRGSpec",
    StrategyKind.SEQGRAPH.value: "models.fusion.control:SequenceGraphSpec",
    StrategyKind.LLM4SBR.value: "models.fusion.llm4sbr:LLM4SBRSpec",
    StrategyKind.LM_RANK.value: "models.fusion.lm_rank:LMRankSpec",
}


@dataclass(frozen=True)
class VariantSpec:
    """A bench row as data: a name, a strategy and that strategy's options.

    Attributes:
        name: the row name (``llmrg``, ``llmrg-no-div``...), also the run folder
            ``fusion-NAME``.
        strategy: which strategy trains it.
        options: the strategy's options as plain values (its spec turns them
            into its typed options, e.g. ``GraphOptions(divergent=False)``).
        description: the bench row's label.
    """

    name: str
    strategy: StrategyKind
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("seqgraph", StrategyKind.SEQGRAPH, {},
                "base + sequence-graph control (SR-GNN, no LLM)"),
    VariantSpec("llmrg", StrategyKind.LLMRG, {}, "base + full LLMRG graph"),
    VariantSpec("llmrg-no-div", StrategyKind.LLMRG, {"divergent": False},
                "LLMRG without divergent extension"),
    VariantSpec("llmrg-no-verify", StrategyKind.LLMRG, {"verification": False},
                "LLMRG without verification"),
    VariantSpec("llm4sbr", StrategyKind.LLM4SBR, {},
                "base + LLM4SBR (LLM long/short-term interests, aligned and gated)"),
    VariantSpec("llm4sbr-no-align", StrategyKind.LLM4SBR, {"align": False},
                "LLM4SBR without alignment"),
    VariantSpec("lm-rerank", StrategyKind.LM_RANK, {"mode": "rerank"},
                "the base model's top 50 reordered by its scores mixed with the language "
                "model's (the mix chosen on validation)"),
    VariantSpec("lm-only", StrategyKind.LM_RANK, {"mode": "only"},
                "the base model's top 50 reordered by the language model alone"),
)

VARIANT_NAMES: tuple[str, ...] = tuple(v.name for v in VARIANTS)


def variant_spec(name: str) -> VariantSpec:
    """The variant called ``name``; ValueError lists the known ones."""
    for spec in VARIANTS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown fusion variant {name!r}; choose one of: {', '.join(VARIANT_NAMES)}")


def strategy_kind(name: str) -> StrategyKind:
    """``name`` as a :class:`StrategyKind`; ValueError lists the registered ones."""
    try:
        return StrategyKind(name)
    except ValueError:
        raise ValueError(f"unknown fusion strategy {name!r}; choose one of: "
                         f"{', '.join(REGISTRY)}") from None
