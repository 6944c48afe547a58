"""Base sequential recommenders behind one interface (:class:`Recommender`)."""

from __future__ import annotations

import importlib

from models.recommenders.base import FitReport, Recommender, TrainConfig

# name -> "module:Class"; imported lazily so `reasonrec data` never loads torch-geometric.
REGISTRY: dict[str, str] = {
    "pop": "models.recommenders.pop:Popularity",
    "gru4rec": "models.recommenders.gru4rec:GRU4Rec",
    "sasrec": "models.recommenders.sasrec:SASRec",
    "srgnn": "models.recommenders.srgnn:SRGNN",
}
MODEL_NAMES = tuple(REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; ValueError lists the known names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, n_items: int, params: dict | None = None) -> Recommender:
    """Instantiate model ``name`` with its validated ``params_type`` built from ``params``."""
    cls = model_class(name)
    return cls(n_items=n_items, params=cls.params_type(**(params or {})))


__all__ = ["FitReport", "Recommender", "TrainConfig", "REGISTRY", "MODEL_NAMES", "model_class",
           "create"]
