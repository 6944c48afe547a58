"""Typed results of the :class:`reasonrec.studio.Studio` facade's data and base-model calls.

The app reads their attributes; the CLI prints :meth:`to_json` (the JSON
shapes the README documents, unchanged by the typing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetSummary:
    """What ``reasonrec data`` reports about the configured dataset.

    Attributes:
        dataset: the dataset's name (e.g. ``ml-100k``).
        users / items / interactions: counts after loading.
        sessions: sessions across all users, split at ``session_gap_minutes`` of inactivity.
        session_gap_minutes: the inactivity gap that splits sessions.
        source: the directory the data was read from.
    """

    dataset: str
    users: int
    items: int
    interactions: int
    sessions: int
    session_gap_minutes: float
    source: Path

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "users": self.users, "items": self.items,
                "interactions": self.interactions, "sessions": self.sessions,
                "session_gap_minutes": self.session_gap_minutes, "source": str(self.source)}


@dataclass(frozen=True)
class ModelEvaluation:
    """A base model's test metrics under leave-one-out.

    Attributes:
        model: the model's name (``pop``, ``gru4rec``, ``sasrec``, ``srgnn``).
        n_users: users evaluated.
        metrics: metric name (``HR@10``, ``NDCG@10``, ...) to its value.
        run_dir: the trained run the metrics belong to.
    """

    model: str
    n_users: int
    metrics: dict[str, float]
    run_dir: Path
    protocol: str = "loo"
    split: str = "test"

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "protocol": self.protocol, "split": self.split,
                "n_users": self.n_users, **self.metrics, "run_dir": str(self.run_dir)}


@dataclass(frozen=True)
class CatalogueEntry:
    """One film of the catalogue as users see it.

    Attributes:
        index: its catalogue index (what the models score).
        item_id: the dataset's id for it.
        title: its display title.
        year: its release year, when known.
        genres: its genres.
    """

    index: int
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "year": self.year,
                "genres": list(self.genres)}


@dataclass(frozen=True)
class ScoredItem:
    """A recommended film, its model score and its rank (1 = first)."""

    item: CatalogueEntry
    score: float
    rank: int

    def to_json(self) -> dict[str, Any]:
        return {**self.item.to_json(), "score": self.score, "rank": self.rank}


@dataclass(frozen=True)
class Recommendation:
    """A user's history and a base model's top-k after it.

    Attributes:
        user: the user's id.
        model: the base model that ranked.
        history: the user's films in time order.
        top_k: the ranked films, best first.
    """

    user: str
    model: str
    history: list[CatalogueEntry]
    top_k: list[ScoredItem]

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "model": self.model,
                "history": [item.to_json() for item in self.history],
                "top_k": [row.to_json() for row in self.top_k]}
