"""Fusion strategies: the base recommender's session vector plus extra inputs -> item scores.

Strategies are registered in :mod:`models.fusion.registry` by kind as
``"module:SpecClass"`` and imported on first use, so importing this package
loads neither torch-geometric nor any strategy. A new strategy (LLM4SBR's
aligned intents, LLMGR's soft tokens, zero-shot LM ranking...) is one module
with a :class:`models.fusion.base.FusionStrategy` and a
:class:`models.fusion.strategy.StrategySpec`, plus its registry entry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.fusion.registry import REGISTRY, StrategyKind, strategy_kind

if TYPE_CHECKING:
    from models.fusion.base import FusionStrategy
    from models.fusion.strategy import StrategySpec


def register(name: str, target: str) -> None:
    """Register the spec of strategy ``name`` as ``"module:Class"``.

    Raises:
        ValueError: a malformed target, a name that is no :class:`StrategyKind`,
            or a name already registered to another target.
    """
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    if REGISTRY.get(name, target) != target:
        raise ValueError(f"fusion strategy {name!r} is already registered as {REGISTRY[name]!r}")
    strategy_kind(name)   # kinds are an enum: a new one is added there, next to its entry
    REGISTRY[name] = target


def strategy_spec(name: str | StrategyKind) -> StrategySpec:
    """The spec registered for ``name``; ValueError lists the known names."""
    kind = strategy_kind(name)
    if kind.value not in REGISTRY:
        raise ValueError(f"fusion strategy {kind.value!r} has no registry entry")
    module, cls = REGISTRY[kind.value].split(":")
    spec = getattr(importlib.import_module(module), cls)()
    if spec.kind is not kind:
        raise ValueError(f"{REGISTRY[kind.value]} declares kind {spec.kind.value!r}, "
                         f"registered as {kind.value!r}")
    return spec


def fusion_class(name: str | StrategyKind) -> type[FusionStrategy]:
    """The model class of strategy ``name``; ValueError lists the known names."""
    return strategy_spec(name).model_class()


def create(name: str | StrategyKind, n_items: int, base_dim: int, **kwargs: Any) -> FusionStrategy:
    """Instantiate strategy ``name``'s model (its own keyword arguments in ``kwargs``)."""
    return fusion_class(name)(n_items, base_dim, **kwargs)


__all__ = ["REGISTRY", "StrategyKind", "register", "strategy_spec", "fusion_class", "create"]
