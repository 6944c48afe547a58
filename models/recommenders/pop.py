"""Popularity: scores every item by its training-interaction count."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from models.protocol import LeaveOneOut
from models.recommenders.base import FitReport, Recommender, TrainConfig


class PopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Popularity(Recommender):
    """Non-personalised baseline; ties are broken by item index in evaluation."""

    name = "pop"
    params_type = PopParams

    def __init__(self, n_items: int, params: PopParams | None = None) -> None:
        self.n_items = n_items
        self.params = params or PopParams()
        self.counts = torch.zeros(n_items + 1, dtype=torch.float32)

    def fit(self, split: LeaveOneOut, train: TrainConfig) -> FitReport:
        start = time.perf_counter()
        counts = np.bincount(np.concatenate(split.train), minlength=self.n_items + 1)
        self.counts = torch.from_numpy(counts.astype(np.float32))
        return FitReport(best_epoch=1, seconds=time.perf_counter() - start)

    def score(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.counts.to(items.device).unsqueeze(0).expand(items.shape[0], -1).clone()

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "counts.json").write_text(json.dumps(self.counts.tolist()))

    @classmethod
    def load(cls, directory: Path, device: str = "auto") -> "Popularity":
        counts = json.loads((directory / "counts.json").read_text())
        model = cls(n_items=len(counts) - 1)
        model.counts = torch.tensor(counts, dtype=torch.float32)
        return model
