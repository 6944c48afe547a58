"""Fusion wiring for the CLI and the app: a studio's config -> graph source and workspace.

The app (#5) builds its explainer the same way the CLI does::

    ws = workspace(studio, studio.config.fusion)
    explainer = ws.explainer(ws.fused(studio.config.fusion.variant))
    explainer.explain(user_id)        # or point / top_k / counterfactual / explain_item

Everything heavy is imported on first call, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.fusion.settings import FusionSettings
    from models.fusion.workspace import FusionWorkspace
    from models.graph_sources import GraphSource
    from reasonrec.studio import Studio


def _quiet(_: str) -> None:
    return None


def graphs_dir(studio: Studio) -> Path:
    """The reasoning builder's graph store for this config (``ReasoningConfig.graphs_dir``)."""
    from reasoning.config import load_reasoning_config
    section = studio.config.reasoning
    return load_reasoning_config(section, data_dir=section.get("data_dir")
                                 or str(studio.config.data_dir)).graphs_dir


def graph_source(studio: Studio, settings: FusionSettings) -> GraphSource:
    """The graph source ``settings.graphs`` names, for this studio's dataset."""
    from models.genre_graphs import GenreGraphSource
    from models.graph_sources import resolve_source

    dataset, split = studio.dataset, studio.split
    return resolve_source(settings.graphs, dataset_name=dataset.name,
                          store_dir=graphs_dir(studio),
                          genre=lambda: GenreGraphSource(dataset, split.train,
                                                         window=settings.window))


def workspace(studio: Studio, settings: FusionSettings,
              log: Callable[[str], None] = _quiet) -> FusionWorkspace:
    """Base model, graph source and sample wired from the studio's config.

    Args:
        studio: dataset, split, runs directory, base-model training settings.
        settings: the fusion settings (usually ``studio.config.fusion``).
        log: progress lines (base or fused training, reused runs).
    """
    from models.fusion.samples import load_user_graphs, sample_users
    from models.fusion.workspace import FusionWorkspace, choose_base
    from models.graph_data import IntentIndex
    from reasoning.prompts import load_intents

    from models.runs import seed_runs

    dataset, split, config = studio.dataset, studio.split, studio.config
    seed_runs(config.runs_dir, dataset.name)   # shipped base and fused runs, when missing
    source = graph_source(studio, settings)
    # Graphs first: a missing graph is found in seconds, not after training a base model.
    graphs = load_user_graphs(dataset, sample_users(split, settings.users, settings.seed),
                              source, IntentIndex(load_intents().labels))
    base = choose_base(config.runs_dir, dataset.name, split, settings, config.train,
                       config.models, log=log)
    return FusionWorkspace(dataset, split, base, source, settings, config.runs_dir, log=log,
                           user_graphs=graphs)
