"""The one interface every recommender implements: fit, score, save, load."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.protocol import LeaveOneOut


class TrainConfig(BaseModel):
    """Training settings shared by all models (per-model hyper-parameters live in
    each model's own ``Params``)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(200, ge=1, description="upper bound; early stopping ends sooner")
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(5, ge=1, description="epochs without a better valid NDCG@10")
    max_epoch_seconds: float | None = Field(None, description="unused by training; bench only")
    seed: int = 2020
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu' or 'cuda'")
    eval_batch_size: int = Field(1024, ge=1)
    progress: bool = True


class EpochLog(BaseModel):
    epoch: int
    loss: float
    valid_ndcg10: float
    seconds: float


class FitReport(BaseModel):
    """What training did: per-epoch log, the best epoch and its validation metrics, and
    (when the fit scored its untrained start) the start's validation metrics."""

    epochs: list[EpochLog] = []
    best_epoch: int = 0
    best_valid: dict[str, float] = {}
    start_valid: dict[str, float] | None = None
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Recommender(ABC):
    """A sequential recommender that scores every item for a batch of histories.

    Item index 0 is padding; ``score`` returns ``n_items + 1`` columns and
    callers mask column 0.
    """

    name: ClassVar[str]
    params_type: ClassVar[type[BaseModel]]

    n_items: int
    params: BaseModel

    @abstractmethod
    def fit(self, split: LeaveOneOut, train: TrainConfig) -> FitReport:
        """Train on ``split.train``, early-stopping on validation NDCG@10."""

    @abstractmethod
    def score(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Score all items.

        Args:
            items: ``[B, L]`` right-padded item indices (0 = padding).
            lengths: ``[B]`` number of real items per row.

        Shapes:
            returns ``[B, n_items + 1]`` float scores (higher is better).
        """

    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Session representation ``[B, d]`` used by fusion; None for non-neural models."""
        return None

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything needed by :meth:`load` into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, device: str = "auto") -> "Recommender":
        """Load a model saved by :meth:`save`."""

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "n_items": self.n_items, "params": self.params.model_dump()}
