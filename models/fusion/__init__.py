"""Fusion strategies: the base recommender's session vector plus extra inputs -> item scores.

Strategies register here by name as ``"module:Class"`` and are imported on
first use, so importing this package loads neither torch-geometric nor any
strategy. A new strategy (LLM4SBR's aligned intents, LLMGR's soft tokens,
zero-shot LM ranking...) subclasses :class:`models.fusion.base.FusionStrategy`
and calls :func:`register`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.fusion.base import FusionStrategy

REGISTRY: dict[str, str] = {
    "llmrg": "models.fusion.llmrg:LLMRGFusion",
    "seqgraph": "models.fusion.control:SequenceGraphControl",
}


def register(name: str, target: str) -> None:
    """Register strategy ``name`` as ``"module:Class"``; ValueError if the name is taken
    by another target."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    if REGISTRY.get(name, target) != target:
        raise ValueError(f"fusion strategy {name!r} is already registered as {REGISTRY[name]!r}")
    REGISTRY[name] = target


def fusion_class(name: str) -> type[FusionStrategy]:
    """The class registered under ``name``; ValueError lists the known names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown fusion strategy {name!r}; choose one of: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, n_items: int, base_dim: int, **kwargs: Any) -> FusionStrategy:
    """Instantiate strategy ``name`` (its own keyword arguments in ``kwargs``)."""
    return fusion_class(name)(n_items, base_dim, **kwargs)


__all__ = ["REGISTRY", "register", "fusion_class", "create"]
