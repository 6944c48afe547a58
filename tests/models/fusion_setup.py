"""Shared real-data setup for the fusion and explanation tests (ml-100k, no LLM).

LLM graphs for the sample are not shipped yet, so these tests read the
LLM-free genre graphs (same schema, see ``models.genre_graphs``) of real
ml-100k users, on top of a small base model trained for one epoch. Each test
module builds its own copy (module-scoped fixtures), a few seconds each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from models.data import Dataset
from models.fusion.inputs import InputProvider
from models.fusion.samples import base_item_table
from models.fusion.settings import FusionSettings
from models.fusion.workspace import BaseChoice, FusionWorkspace
from models.genre_graphs import GenreGraphSource
from models.graph_data import TextEncoder
from models.protocol import LeaveOneOut, leave_one_out
from models.recommenders import TrainConfig, create

SMALL_GRU = {"embedding_size": 16, "hidden_size": 16, "max_len": 20}


class HashEncoder:
    """A stand-in for #3's text encoder: a fixed pseudo-random vector per text, counted.

    Unit tests only (the real one is ``reasoning.localizer.GGUFTextEncoder``):
    ``calls`` and ``texts`` say whether and what it was asked to encode.
    """

    def __init__(self, dim: int = 8, identity: str = "hash-encoder-v1") -> None:
        self.dim = dim
        self.identity = identity
        self.calls = 0
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        rows = [np.random.default_rng(list(hashlib.sha256(t.encode()).digest()[:8]))
                .standard_normal(self.dim) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


def small_base(split: LeaveOneOut, seed: int = 3) -> BaseChoice:
    """A GRU4Rec trained for one epoch (seconds), as the frozen base model."""
    model = create("gru4rec", split.n_items, SMALL_GRU)
    report = model.fit(split, TrainConfig(epochs=1, progress=False, seed=seed, device="cpu"))
    return BaseChoice("gru4rec", model, Path("in-memory"), report.best_valid["NDCG@10"])


def small_workspace(dataset: Dataset, runs_root: Path, *, intent_encoder: TextEncoder | None = None,
                    intent_cache_dir: Path | None = None,
                    **settings: object) -> FusionWorkspace:
    """A workspace over a few sampled users with genre graphs (settings override defaults).

    Without ``intent_encoder`` intent nodes get a learned table: these tests
    stay LLM-free and fast; ``reasonrec.fusion.workspace`` (the CLI and app
    path) always passes #3's real text encoder.
    """
    split = leave_one_out(dataset)
    values: dict[str, object] = {"users": 24, "epochs": 2, "patience": 2, "train_steps": 4,
                                 "learning_rate": 0.01, "bootstrap": 50, "latency_users": 5,
                                 "faithfulness_users": 3, "random_orders": 3}
    values.update(settings)
    fusion = FusionSettings(**values)
    return FusionWorkspace(dataset, split, small_base(split),
                           GenreGraphSource(dataset, split.train), fusion,
                           runs_root, intent_encoder=intent_encoder,
                           intent_cache_dir=intent_cache_dir,
                           providers=[window_interest_provider(dataset, fusion.window),
                                      popularity_lm_provider(split)])


def window_interest_provider(dataset: Dataset, window: int) -> InputProvider:
    """LLM-free stand-in interests for LLM4SBR, as the genre graphs stand in for LLM ones:
    at each window step the long-term interest is the prefix's last 5 items (equal
    weights), the short-term one its last item; item vectors from :class:`HashEncoder`."""
    from models.fusion.llm4sbr.inputs import (Interest, InterestProvider, InterestSource,
                                              StoredInterests)

    items = dataset.catalogue.items
    vectors = HashEncoder(dim=8).encode([item.describe() for item in items[1:]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.vstack([np.zeros((1, 8), dtype=np.float32), vectors])

    def interest(chosen: list[int]) -> Interest:
        return Interest(text=items[chosen[-1]].title, answer=items[chosen[-1]].title,
                        items=tuple((i, 1.0 / len(chosen)) for i in chosen))

    def load(user_id: str) -> StoredInterests:
        history = dataset.histories[dataset.user_index(user_id)]
        end = len(history) - 1
        ids = [int(i) for i in history[max(0, end - window):end]]
        return StoredInterests(tuple(ids), {step: (interest(ids[max(0, step - 4): step + 1]),
                                                   interest(ids[step: step + 1]))
                                            for step in range(len(ids))})

    return InterestProvider(lambda: InterestSource("window-standin-v1", "stand-in", load,
                                                   vectors, "the stand-in"))


class PopularityLMScores:
    """LLM-free stand-in LM scores for LM ranking, as the genre graphs stand in for LLM ones:
    each valid/test point's base top-10 scored by the log of its training count.
    (The real scores: ``reasonrec fusion lm-scores``; tests/models/fusion/lm_rank.)"""

    from models.fusion.strategy import Need

    need = Need.LM_SCORES

    def __init__(self, split: LeaveOneOut, top_n: int = 10) -> None:
        counts = np.zeros(split.n_items + 1)
        for history in split.train:
            np.add.at(counts, history, 1.0)
        self.log_counts = np.log1p(counts)
        self.top_n = top_n

    def identity(self) -> str:
        return f"popularity-standin-v1-top{self.top_n}"

    def provide(self, users, points, item_table):   # noqa: ANN001, ANN201
        from models.fusion.lm_rank.inputs import SCORED_ROLES, UserLMScores, top_candidates

        by_user: dict[str, dict] = {u.user_id: {} for u in users}
        for index, point in enumerate(points.points):
            if point.role in SCORED_ROLES:
                top = top_candidates(points.e_base[index:index + 1], item_table, self.top_n)[0]
                by_user[point.user.user_id][point.step] = (
                    tuple(top.tolist()), tuple(float(self.log_counts[i]) for i in top.tolist()))
        return {user: UserLMScores(steps) for user, steps in by_user.items()}


def popularity_lm_provider(split: LeaveOneOut) -> InputProvider:
    return PopularityLMScores(split)


def random_llmrg(workspace: FusionWorkspace, seed: int = 0) -> torch.nn.Module:
    """An LLMRG fusion with random (not identity) weights: every graph part moves scores.

    A trained model on this tiny sample may stay at the identity start (no
    epoch beats the base model), where removing a path changes nothing; the
    explanation tests need a model in which it does.
    """
    from models.fusion import create as create_fusion

    torch.manual_seed(seed)
    table = base_item_table(workspace.base.model)
    return create_fusion("llmrg", workspace.dataset.n_items, table.shape[1], item_init=table,
                         identity_init=False, num_intents=len(workspace.intents)).eval()
