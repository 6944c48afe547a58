"""The studio facade: the one object the CLI and the app call.

Data, base models, reasoning (the LLMRG builder, knowledge base, graph store),
fused strategies and the shipped benches are all reached through
:class:`Studio`. It owns no modelling logic: it wires the config to ``models/``
and ``reasoning/`` and caches what is expensive to load. Thread-safe, because
the app shares one instance across browser sessions. Heavy layers (the LLM
stack, fusion) are imported on first use, so opening a studio stays quick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from models.data import Dataset, ensure_ml100k, load_dataset
from models.metrics import mask_padding, top_items
from models.protocol import LeaveOneOut, leave_one_out, pad_sequences
from models.recommenders import Recommender, model_class
from models.runs import RunInfo, latest_run, load_run, seed_runs, shipped_bench, train_and_save
from reasonrec.config import StudioConfig
from reasonrec.results import (CatalogueEntry, DatasetSummary, ModelEvaluation, Recommendation,
                               ScoredItem)

if TYPE_CHECKING:
    import networkx as nx

    from models.fusion.settings import FusionSettings
    from models.fusion.workspace import FusionWorkspace
    from reasoning.builder import GraphBuilder
    from reasoning.config import ReasoningConfig
    from reasoning.kb import KnowledgeBase
    from reasoning.store import GraphStore
    from reasonrec.fusion import StrategyRun


def _quiet(_: str) -> None:
    return None


@dataclass
class LoadedModel:
    name: str
    model: Recommender
    run_dir: Path
    metrics: dict[str, Any]


class Studio:
    """Loads the configured dataset and base models on demand."""

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._dataset: Dataset | None = None
        self._split: LeaveOneOut | None = None
        self._models: dict[str, LoadedModel] = {}
        self._runs_seeded = False

    # ------------------------------------------------------------------ data
    @property
    def dataset_path(self) -> Path:
        if self.config.data.path:
            return Path(self.config.data.path).expanduser()
        return ensure_ml100k(self.config.data_dir)

    @property
    def dataset(self) -> Dataset:
        with self._lock:
            if self._dataset is None:
                self._dataset = load_dataset(self.dataset_path, self.config.data.encoding or None)
            return self._dataset

    @property
    def runs_dir(self) -> Path:
        """Where trained runs live; the shipped ones (``assets/runs``) are copied in on first use,
        so the CLI and the app start from them instead of training."""
        with self._lock:
            if not self._runs_seeded:
                seed_runs(self.config.runs_dir, self.dataset.name)
                self._runs_seeded = True
        return self.config.runs_dir

    @property
    def split(self) -> LeaveOneOut:
        with self._lock:
            if self._split is None:
                self._split = leave_one_out(self.dataset, self.config.data.max_len)
            return self._split

    @property
    def session_gap_seconds(self) -> float:
        return self.config.data.session_gap_minutes * 60.0

    def dataset_summary(self) -> DatasetSummary:
        ds = self.dataset
        return DatasetSummary(ds.name, ds.n_users, ds.n_items, ds.n_interactions,
                              ds.n_sessions(self.session_gap_seconds),
                              self.config.data.session_gap_minutes, Path(ds.source))

    # ---------------------------------------------------------------- models
    def train(self, name: str) -> RunInfo:
        model_class(name)
        info = train_and_save(name, self.split, self.dataset.name, self.runs_dir,
                              params=self.config.models.get(name),
                              train=self.config.train)
        with self._lock:
            self._models[name] = LoadedModel(name, info.model, info.directory, info.metrics)
        return info

    def model(self, name: str, train_if_missing: bool = True) -> LoadedModel:
        """The latest trained run of ``name``; trains one first when there is none."""
        model_class(name)
        with self._lock:
            if name in self._models:
                return self._models[name]
            run = latest_run(self.runs_dir, self.dataset.name, name)
            if run is None:
                if not train_if_missing:
                    raise LookupError(f"no trained {name} run under {self.runs_dir}; "
                                      f"run `reasonrec train --model {name}` first")
                self.train(name)
                return self._models[name]
            model, _config, metrics = load_run(run, self.config.train.device)
            self._models[name] = LoadedModel(name, model, run, metrics)
            return self._models[name]

    def has_trained_run(self, name: str) -> bool:
        """Whether a complete trained run of base model ``name`` is on this machine."""
        return latest_run(self.runs_dir, self.dataset.name, name) is not None

    def shipped_bench(self, name: str) -> Path:
        """The bench result ``name`` shipped for this dataset (it may not exist)."""
        return shipped_bench(self.dataset.name, name)

    def evaluate(self, name: str) -> ModelEvaluation:
        loaded = self.model(name)
        return ModelEvaluation(name, int(loaded.metrics["n_users"]),
                               {k: float(v) for k, v in loaded.metrics["test"].items()},
                               loaded.run_dir)

    # ----------------------------------------------------------- recommending
    def item(self, index: int) -> CatalogueEntry:
        """The catalogue's film at ``index``, as users see it."""
        item = self.dataset.catalogue[int(index)]
        return CatalogueEntry(int(index), item.item_id, item.display_name, item.year,
                              tuple(item.genres))

    def top_k(self, name: str, history: np.ndarray, k: int,
              exclude_seen: bool | None = None) -> list[ScoredItem]:
        """Top-k items for a history (item indices in time order)."""
        if len(history) == 0:
            raise ValueError("cannot recommend from an empty history")
        exclude_seen = self.config.recommend.exclude_seen if exclude_seen is None else exclude_seen
        model = self.model(name).model
        items, lengths = pad_sequences([history], self.config.data.max_len)
        device = _model_device(model)
        with torch.no_grad():
            scores = model.score(items.to(device), lengths.to(device))[0].float().cpu()
        mask_padding(scores)
        if exclude_seen:
            scores[torch.as_tensor(np.unique(history))] = -torch.inf
        # Ties go to the lower item index, as in the metrics.
        return [ScoredItem(self.item(i), float(scores[i]), r)
                for r, i in enumerate(top_items(scores, k), start=1)]

    def recommend(self, user: str, k: int | None = None, name: str | None = None,
                  exclude_seen: bool | None = None) -> Recommendation:
        """History and top-k for a user, recommending after their whole history."""
        name = name or self.config.recommend.default_model
        k = k or self.config.recommend.k
        history = self.dataset.history(user)
        return Recommendation(str(user), name, [self.item(i) for i in history],
                              self.top_k(name, history, k, exclude_seen))

    # -------------------------------------------------------------- reasoning
    def reasoning_settings(self, **overrides: Any) -> ReasoningConfig:
        """The validated ``[reasoning]`` settings, ``overrides`` on top (ValueError: a bad
        value, naming the field)."""
        return self.config.reasoning_settings(**overrides)

    def open_builder(self, settings: ReasoningConfig | None = None) -> GraphBuilder:
        """The LLMRG builder with ``settings``' backend, knowledge base and localizer (loads
        the LLM and the text encoder: seconds)."""
        from reasoning.builder import open_builder

        return open_builder(self.dataset, settings or self.reasoning_settings())

    def graph_store(self, settings: ReasoningConfig | None = None) -> GraphStore:
        """The store of reasoning graphs built on this machine."""
        from reasoning.store import GraphStore

        return GraphStore((settings or self.reasoning_settings()).graphs_dir)

    def knowledge_base(self, settings: ReasoningConfig | None = None) -> KnowledgeBase:
        """The knowledge base of LLM answers (KnowledgeBaseError: unreadable)."""
        from reasoning.kb import KnowledgeBase

        return KnowledgeBase((settings or self.reasoning_settings()).kb_path)

    # ----------------------------------------------------------------- fusion
    def fusion_workspace(self, settings: FusionSettings | None = None,
                         log: Callable[[str], None] = _quiet) -> FusionWorkspace:
        """Base model, graph source and user sample of the fused strategies (``[fusion]``
        unless ``settings``); trains the base model when none matches."""
        from reasonrec.fusion import workspace

        return workspace(self, settings or self.config.fusion, log)

    def strategy_runs(self, workspace: FusionWorkspace) -> list[StrategyRun]:
        """Every registered strategy with its trained run in ``workspace``, or why it has
        none (nothing is trained here)."""
        from reasonrec.fusion import strategy_runs

        return strategy_runs(workspace)

    def fusion_graph(self, user: str) -> tuple[nx.DiGraph | None, str]:
        """``user``'s graph from the source the fused models read, and that source's name in
        words (ValueError / OSError: the source cannot be read)."""
        from models.graph_sources import source_label
        from reasonrec.fusion import graph_source

        source = graph_source(self, self.config.fusion)
        return source.get(user), source_label(source)


def _model_device(model: Recommender) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            return parameter.device
    return torch.device("cpu")
