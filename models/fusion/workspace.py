"""Wiring of the fused models: base model, user sample, graphs, points, fitted variants.

:class:`FusionWorkspace` owns what every fused variant shares (the frozen
base model, the seeded user sample, their placed graphs, every point's
E_base) and fits, saves, finds and loads the variants' runs. A saved run is
reused only when its *fingerprint* matches: the base run, the graph source and
a digest of the sample's graphs, the users and the training settings, so a
rebuilt graph store or a retrained base model never silently serves an old
fused model.

Intent nodes read #3's text-encoder vectors: the workspace's intent index is
the stage-1 vocabulary plus every divergent intent text of the sample's graphs
(:meth:`IntentIndex.from_graphs`), its table is encoded once and cached in the
data directory (:func:`cached_intent_table`), and the fingerprint names the
index and the encoder, so a new vocabulary or encoder trains a new run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from models.data import Dataset
from models.data.digest import json_digest
from models.explain import Explainer
from models.fusion.fit import (FusionRun, base_ranks, find_fusion_run, fit_fusion, load_fusion_run,
                               new_strategy, rank_samples, save_fusion_run)
from models.fusion.base import FusionStrategy
from models.fusion.samples import (PointSet, Role, UserGraph, Variant, base_item_table,
                                   build_points, describe_points, fusion_samples,
                                   load_user_graphs, sample_users, variant)
from models.fusion.settings import FusionSettings
from models.fusion.inputs import InputProvider
from models.fusion.strategy import Need, StrategyContext
from models.fusion.train import FusionSample
from models.graph_data import IntentIndex, TextEncoder, cached_intent_table
from models.graph_sources import GraphSource, graph_backend, source_label
from models.metrics import metrics_from_ranks
from models.protocol import LeaveOneOut
from models.recommenders import MODEL_NAMES, Recommender, TrainConfig
from models.runs import latest_run, load_run, train_and_save
from reasoning.graph import graph_to_json
from reasoning.prompts import load_intents

Log = Callable[[str], None]

#: The per-user inputs a workspace builds (and caches) itself; others come from providers.
BUILT_IN = frozenset({Need.SESSION, Need.REASONING_GRAPH, Need.INTENT_TABLE})


def _quiet(_: str) -> None:
    return None


class IntentEncoderError(ValueError):
    """The intent table's text encoder could not run; the message names the fix."""


@dataclass
class BaseChoice:
    """The frozen base model that gives E_base.

    Attributes:
        name: model name.
        model: the loaded model (eval mode).
        run_dir: its saved run.
        valid_ndcg10: its validation NDCG@10 on all users (how "best" was chosen).
    """

    name: str
    model: Recommender
    run_dir: Path
    valid_ndcg10: float


def choose_base(runs_root: Path, dataset_name: str, split: LeaveOneOut, settings: FusionSettings,
                train: TrainConfig, params: Mapping[str, dict[str, Any]] | None = None,
                log: Log = _quiet) -> BaseChoice:
    """The base model: the named one, or with ``best`` the saved neural run with the
    highest validation NDCG@10; trains ``base_fallback`` (or the named model) when no run exists.

    Args:
        runs_root: where base runs live (``models.runs`` layout).
        dataset_name: the dataset's name.
        split: the ``loo`` split (for training when needed).
        settings: ``base_model`` and ``base_fallback``.
        train: training settings for a base model trained here.
        params: per-model hyper-parameters (``[models.NAME]``).
        log: progress lines.
    """
    neural = [n for n in MODEL_NAMES if n != "pop"]
    names = neural if settings.base_model == "best" else [settings.base_model]
    found: list[tuple[float, str, Path]] = []
    for name in names:
        run = latest_run(runs_root, dataset_name, name)
        if run is not None:
            metrics = json.loads((run / "metrics.json").read_text())
            found.append((float(metrics["valid"]["NDCG@10"]), name, run))
    if not found:
        name = settings.base_fallback if settings.base_model == "best" else settings.base_model
        log(f"no saved {' or '.join(names)} run under {runs_root}: training {name} first")
        info = train_and_save(name, split, dataset_name, runs_root,
                              params=(params or {}).get(name), train=train)
        return BaseChoice(name, info.model, info.directory, info.metrics["valid"]["NDCG@10"])
    score, name, run = max(found)
    model, _config, _metrics = load_run(run, "cpu")
    return BaseChoice(name, model, run, score)


class FusionWorkspace:
    """Everything the fused variants share, and their runs.

    Args:
        dataset: the dataset.
        split: its ``loo`` split.
        base: the frozen base model (:func:`choose_base`).
        source: where the sampled users' graphs come from.
        settings: the fusion settings.
        runs_root: where fused runs are saved (next to the base runs).
        log: progress lines (training epochs, what is reused).
        user_graphs: the sample's graphs when already loaded (callers check
            them before spending minutes on a base model); they are re-placed
            with this workspace's intent index.
        intent_encoder: #3's text encoder for the intent table
            (``reasoning.localizer.GGUFTextEncoder``; loaded only when the
            table is not cached). None: a learned intent table instead: LLM-free
            tests and stand-ins only; ``reasonrec.fusion.workspace`` always
            passes the real encoder.
        providers: builders of the inputs the workspace does not build itself
            (:mod:`models.fusion.inputs`: LLM interests, LM scores), one per need.
        intent_cache_dir: where the intent table is cached (the data
            directory's ``reasoning/embeddings``); required with an encoder.
    """

    def __init__(self, dataset: Dataset, split: LeaveOneOut, base: BaseChoice,
                 source: GraphSource, settings: FusionSettings, runs_root: Path,
                 log: Log = _quiet, user_graphs: Sequence[UserGraph] | None = None, *,
                 intent_encoder: TextEncoder | None = None,
                 intent_cache_dir: Path | None = None,
                 interest_similarity: Any = None,
                 providers: Sequence[InputProvider] = ()) -> None:
        if intent_encoder is not None and intent_cache_dir is None:
            raise ValueError("an intent encoder needs intent_cache_dir (its table is cached)")
        # The localizer, for interest-to-item evidence in explanations (None: builder matches only).
        self.interest_similarity = interest_similarity
        self.dataset = dataset
        self.split = split
        self.base = base
        self.source = source
        self.settings = settings
        self.runs_root = Path(runs_root)
        self.log = log
        self.intent_encoder = intent_encoder
        self.intent_cache_dir = Path(intent_cache_dir) if intent_cache_dir is not None else None
        self.labels: tuple[str, ...] = tuple(load_intents().labels)
        self.users = sample_users(split, settings.users, settings.seed)
        self._samples: dict[tuple[str, Role], list[FusionSample]] = {}
        self.providers: dict[Need, InputProvider] = {p.need: p for p in providers}
        self._extras: dict[Need, Mapping[str, Any]] = {}
        self._graphs = list(user_graphs) if user_graphs is not None else None
        if self._graphs is not None and [u.user for u in self._graphs] != self.users.tolist():
            raise ValueError("user_graphs are not the graphs of this workspace's user sample")

    # ----------------------------------------------------------------- shared
    def _placed(self) -> list[UserGraph]:
        """The sampled users' graphs as loaded (their index may be a provisional one)."""
        if self._graphs is None:
            self._graphs = load_user_graphs(self.dataset, self.users, self.source,
                                            IntentIndex(self.labels))
        return self._graphs

    @cached_property
    def intents(self) -> IntentIndex:
        """The vocabulary labels, then every other intent text of the sample's graphs (sorted)."""
        return IntentIndex.from_graphs(self.labels, [u.graph for u in self._placed()])

    @cached_property
    def user_graphs(self) -> list[UserGraph]:
        """The sampled users' graphs, placed (MissingGraphsError when any is missing)."""
        # Placed again with the full index: the one they were loaded with (the
        # vocabulary alone) would send every divergent intent text to row 0.
        return [replace(u, intents=self.intents) for u in self._placed()]

    @property
    def intent_identity(self) -> str:
        """The intent table's source: the encoder's identity, or ``learned``."""
        return self.intent_encoder.identity if self.intent_encoder is not None else "learned"

    @cached_property
    def intent_table(self) -> Tensor | None:
        """#3's text-encoder vectors of :attr:`intents` (``[len(intents), text_dim]``), cached
        on disk; None without an encoder (a learned table)."""
        if self.intent_encoder is None:
            return None
        assert self.intent_cache_dir is not None   # checked in __init__
        from reasoning.backend import ModelFileError

        try:
            return cached_intent_table(self.intents, self.intent_encoder, self.intent_cache_dir,
                                       log=self.log)
        except ModelFileError as exc:   # no transformers, unreadable GGUF: a user's fix
            raise IntentEncoderError(f"intent nodes need #3's text encoder: {exc}") from None

    @cached_property
    def points(self) -> PointSet:
        """Every sampled user's test, valid and training points with E_base."""
        return build_points(self.user_graphs, self.base.model, self.split.max_len,
                            self.settings.train_steps)

    @cached_property
    def item_table(self) -> Tensor:
        """The base model's item table ``[n_items + 1, d]``."""
        table = base_item_table(self.base.model)
        if table.shape[1] != self.points.e_base.shape[1]:
            raise ValueError(f"{self.base.name}'s item table has width {table.shape[1]} but its "
                             f"session vectors {self.points.e_base.shape[1]}; fusion starts "
                             f"from E_base @ items.T and needs them equal")
        return table

    @cached_property
    def fingerprint(self) -> dict[str, Any]:
        """What a saved fused run must have been trained on to be reused."""
        graphs = [graph_to_json(u.graph) for u in self.user_graphs]
        # The base run by model and run id, and the graphs by content, not by path
        # or source: a run copied to another machine (or shipped in assets/runs)
        # still matches, whether its graphs come from a store or the bundle.
        return {"dataset": self.dataset.name,
                "base_run": f"{self.base.name}/{Path(self.base.run_dir).name}",
                "graphs": json_digest(graphs),
                "users": json_digest([u.user_id for u in self.user_graphs]),
                # Rows and vectors of the intent table: a new vocabulary or encoder
                # is a different model input, even over the same graphs.
                "intents": {"texts": self.intents.digest()[:16], "rows": len(self.intents),
                            "encoder": self.intent_identity},
                "max_len": self.split.max_len, "settings": self.settings.training_key()}

    def run_fingerprint(self, chosen: Variant) -> dict[str, Any]:
        """:attr:`fingerprint` plus the variant and the identity of each provided input it
        reads (rebuilt LLM interests or LM scores train a new run)."""
        self.check_needs(chosen)
        provided = {need.value: self.providers[need].identity()
                    for need in sorted(chosen.needs - BUILT_IN, key=lambda n: n.value)}
        return {**self.fingerprint, "variant": chosen.name,
                **({"inputs": provided} if provided else {})}

    def describe(self) -> dict[str, Any]:
        """Sample size and provenance, for reports."""
        return {"users": len(self.user_graphs), "points": dict(describe_points(self.points)),
                "seed": self.settings.seed, "base_model": self.base.name,
                "base_run": str(self.base.run_dir), "graph_source": source_label(self.source),
                "graph_backends": sorted({graph_backend(u.graph) for u in self.user_graphs}),
                "intents": {"rows": len(self.intents),
                            "vocabulary": sum(t in self.intents for t in self.labels),
                            "encoder": self.intent_identity}}

    def provided(self, need: Need) -> Mapping[str, Any]:
        """The sample's inputs of ``need`` from its provider, by user token (built once)."""
        if need not in self._extras:
            self._extras[need] = self.providers[need].provide(self.user_graphs, self.points,
                                                              self.item_table)
        return self._extras[need]

    def extras(self, chosen: Variant) -> dict[str, dict[Need, Any]]:
        """Per user token, the provided inputs ``chosen`` reads (empty when it reads none)."""
        self.check_needs(chosen)
        by_user: dict[str, dict[Need, Any]] = {}
        for need in sorted(chosen.needs - BUILT_IN, key=lambda n: n.value):
            for user_id, value in self.provided(need).items():
                by_user.setdefault(user_id, {})[need] = value
        return by_user

    def samples(self, name: str, role: Role) -> list[FusionSample]:
        """Variant ``name``'s samples of ``role`` (built once)."""
        key = (name, role)
        if key not in self._samples:
            chosen = variant(name)
            self._samples[key] = fusion_samples(self.points, chosen, role, self.extras(chosen))
        return self._samples[key]

    def targets(self, role: Role) -> Tensor:
        return self.points.targets(role)

    def base_ranks(self, role: Role) -> np.ndarray:
        """The base model's 0-based target ranks at the ``role`` points."""
        index = self.points.indices(role)
        return base_ranks(self.points.e_base[index], self.item_table, self.targets(role))

    # ----------------------------------------------------------------- fitting
    def check_needs(self, chosen: Variant) -> None:
        """ValueError when ``chosen`` reads inputs that nothing here builds."""
        missing = chosen.needs - BUILT_IN - set(self.providers)
        if missing:
            raise ValueError(f"fusion variant {chosen.name} needs "
                             f"{', '.join(sorted(n.value for n in missing))}, which this "
                             f"workspace has no provider for (see its strategy's module)")

    def context(self, chosen: Variant) -> StrategyContext:
        """What ``chosen``'s constructor arguments read, built only for what it needs.

        Raises:
            ValueError: it needs inputs this workspace cannot build.
        """
        self.check_needs(chosen)
        # Only strategies reading intent vectors load the text encoder.
        table = self.intent_table if Need.INTENT_TABLE in chosen.needs else None
        provided = {need: self.provided(need) for need in chosen.needs - BUILT_IN}
        return StrategyContext(self.intents, table, self.settings.gnn_steps, provided)

    def new_model(self, name: str) -> tuple[FusionStrategy, dict[str, Any]]:
        """Variant ``name``'s freshly initialized model (seeded, starting as the base
        model) and its constructor arguments."""
        chosen = variant(name)
        kwargs = chosen.model_kwargs(self.context(chosen))
        strategy = new_strategy(chosen.strategy, self.dataset.n_items, self.item_table.shape[1],
                                seed=self.settings.seed, item_init=self.item_table, kwargs=kwargs)
        return strategy, kwargs

    def fit(self, name: str) -> FusionRun:
        """Train variant ``name`` from scratch, evaluate it on the sample and save the run."""
        chosen = variant(name)
        strategy, kwargs = self.new_model(name)
        self.log(f"training {name} on {len(self.samples(name, 'train'))} points of "
                 f"{len(self.user_graphs)} users")
        report = fit_fusion(strategy, self.samples(name, "train"), self.samples(name, "valid"),
                            self.settings, log=self.log)
        metrics = {role: metrics_from_ranks(rank_samples(strategy, self.samples(name, role)))
                   for role in ("valid", "test")}
        return save_fusion_run(self.runs_root, self.dataset.name, name, strategy, kwargs,
                               self.run_fingerprint(chosen), report,
                               {**metrics, "n_users": len(self.user_graphs)},
                               intents=self.intents if Need.INTENT_TABLE in chosen.needs
                               else None)

    def fused(self, name: str, train_if_missing: bool = True) -> FusionRun:
        """The saved run of ``name`` matching this workspace, else a new one (or LookupError)."""
        found = find_fusion_run(self.runs_root, self.dataset.name, name,
                                self.run_fingerprint(variant(name)))
        if found is not None:
            self.log(f"reusing fused run {found}")
            return load_fusion_run(found)
        if not train_if_missing:
            raise LookupError(f"no fused {name} run for this base model, sample and graphs "
                              f"under {self.runs_root}; run `reasonrec fusion fit`")
        return self.fit(name)

    def ranks(self, run: FusionRun, role: Role) -> np.ndarray:
        """A fused run's 0-based target ranks at the ``role`` points."""
        return rank_samples(run.strategy, self.samples(run.variant, role))

    def explainer(self, run: FusionRun, *, k: int | None = None,
                  exclude_seen: bool = True) -> Explainer:
        """An :class:`Explainer` of ``run``, any registered strategy (any user the source has
        a graph for).

        It reads intents through the run's own index (``intents.json``), the
        rows its table was trained with; a run saved without one gets this
        workspace's index when its table has as many rows (else ValueError).
        """
        intents = run.intents
        if intents is None:
            rows = run.meta.get("kwargs", {}).get("num_intents")
            if rows is not None and int(rows) != len(self.intents):
                raise ValueError(f"{run.directory} has no intents.json and its intent table "
                                 f"has {rows} rows, not this workspace's {len(self.intents)}; "
                                 f"retrain it with `reasonrec fusion fit`")
            intents = self.intents
        s = self.settings
        return Explainer(self.dataset, self.base.model, run.strategy, variant(run.variant),
                         intents, self.source, self.split.max_len, k=k or s.k,
                         exclude_seen=exclude_seen, seed=s.seed, random_orders=s.random_orders,
                         max_paths=s.max_paths, interest_similarity=self.interest_similarity,
                         extras=self.extras(variant(run.variant)),
                         provenance={"base_model": self.base.name,
                                     "base_run": str(self.base.run_dir),
                                     "fusion_run": str(run.directory),
                                     "graph_source": source_label(self.source)})
