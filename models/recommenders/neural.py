"""Shared torch machinery for the neural recommenders (GRU4Rec, SASRec, SR-GNN).

:class:`NeuralRecommender` owns everything the three models have in common:

* the training loop: full-softmax cross-entropy over all items, Adam (with an
  optional per-epoch exponential learning-rate decay), seeded and
  deterministic on CPU, CUDA when :func:`resolve_device` says so, early stopping
  on validation NDCG@10 with ``patience`` (the best weights are restored), a tqdm
  bar with the loss and the ETA, and the :class:`FitReport`;
* scoring: ``score = encode(items, lengths) @ item_embeddings.T``;
* save/load: ``state_dict`` + a params JSON.

A subclass supplies the network (:meth:`encode`, :meth:`item_embeddings`), its
weight initialisation (:meth:`reset_parameters`), how training data is built
from a split (:meth:`training_data`) and the loss of one batch
(:meth:`batch_loss`). Two data regimes are provided:
:class:`WindowedSequenceModel` (causal encoders trained on every position of
history windows: GRU4Rec, SASRec) and :class:`PrefixSequenceModel` (one
forward pass per prefix and target, as RecBole trains: SR-GNN, whose session
graph depends on the whole prefix).

Training hyper-parameters: each model's ``Params`` carries its own tuned
``batch_size``, ``learning_rate``, ``weight_decay`` and early-stopping
``patience``. A :class:`TrainConfig` overrides them only when the caller set
those fields explicitly (pydantic's ``model_fields_set``); ``TrainConfig()``
leaves the tuned values alone. The values used are written back into
``params`` so a saved run records them.
"""

from __future__ import annotations

import json
import math
import random
import time
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm.auto import tqdm

from models.early_stopping import EarlyStopping
from models.evaluation import evaluate
from models.metrics import mask_padding
from models.protocol import LeaveOneOut
from models.recommenders.base import FitReport, Recommender, TrainConfig, resolve_device
from models.recommenders.losses import softmax_cross_entropy
# The sample builders have their own module; srgnn and the tests import them from here.
from models.recommenders.sequences import (PrefixSamples, causal_windows, prefix_samples,
                                           truncate_right_padded)

#: TrainConfig fields that override a model's tuned value when set explicitly.
OVERRIDABLE = ("batch_size", "learning_rate", "weight_decay", "patience")


class NeuralParams(BaseModel):
    """Hyper-parameters every neural model has; subclasses add the network's own."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(128, ge=1, description="training samples (windows or prefixes) per step")
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_decay: float = Field(1.0, gt=0, le=1, description="learning-rate factor per epoch")
    patience: int = Field(5, ge=1,
                          description="epochs without a better valid NDCG@10 before stopping")


class NeuralRecommender(Recommender, nn.Module):
    """Base class of the torch recommenders; see the module docstring."""

    params_type: ClassVar[type[NeuralParams]]
    params: NeuralParams

    def __init__(self, n_items: int, params: NeuralParams | None = None) -> None:
        nn.Module.__init__(self)
        if n_items < 1:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = n_items
        self.params = params if params is not None else self.params_type()

    # ------------------------------------------------------------ subclass API
    @abstractmethod
    def reset_parameters(self) -> None:
        """(Re-)initialise every weight from the global torch RNG."""

    @abstractmethod
    def item_embeddings(self) -> torch.Tensor:
        """Output item embeddings ``[n_items + 1, d]`` (row 0 = padding)."""

    @abstractmethod
    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Session representation ``[B, d]``, the vector dotted with item embeddings.

        Args:
            items: ``[B, L]`` right-padded item indices (0 = padding).
            lengths: ``[B]`` real items per row (at least 1).
        """

    @abstractmethod
    def training_data(self, split: LeaveOneOut) -> Any:
        """Build (once per fit) the training samples from ``split.train``."""

    @abstractmethod
    def iter_batches(self, data: Any, batch_size: int, rng: np.random.Generator,
                     device: torch.device) -> Iterator[Any]:
        """Yield shuffled batches of ``data`` on ``device`` (one epoch)."""

    @abstractmethod
    def n_batches(self, data: Any, batch_size: int) -> int:
        """Number of batches :meth:`iter_batches` yields per epoch."""

    @abstractmethod
    def batch_loss(self, batch: Any) -> torch.Tensor:
        """Mean cross-entropy of one training batch."""

    # ---------------------------------------------------------------- scoring
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of real items ``[N, n_items]`` (padding column dropped) for ``hidden [N, d]``."""
        return hidden @ self.item_embeddings()[1:].T

    def ce_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross-entropy of ``hidden [N, d]`` against ``targets [N]`` (1..n)."""
        return softmax_cross_entropy(hidden, self.item_embeddings()[1:], targets - 1)

    @torch.no_grad()
    def score(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Score all items: ``[B, L]`` items, ``[B]`` lengths -> ``[B, n_items + 1]``.

        Inputs are moved to the model's device; column 0 (padding) gets
        ``-inf``. The model is put in eval mode.
        """
        self.eval()
        device = self.device
        hidden = self.encode(items.to(device), lengths.to(device))
        scores = hidden @ self.item_embeddings().T
        return mask_padding(scores)

    # --------------------------------------------------------------- training
    def resolve_hyper(self, train: TrainConfig) -> NeuralParams:
        """This model's params with the explicitly set TrainConfig overrides applied."""
        update = {k: getattr(train, k) for k in OVERRIDABLE if k in train.model_fields_set}
        return self.params.model_copy(update=update) if update else self.params

    def fit(self, split: LeaveOneOut, train: TrainConfig) -> FitReport:
        """Train on ``split.train``; early-stop on validation NDCG@10 (best weights kept)."""
        start = time.perf_counter()
        self.params = self.resolve_hyper(train)
        hp = self.params
        device = resolve_device(train.device)
        with deterministic(train.seed):
            self.reset_parameters()
            self.to(device)
            data = self.training_data(split)
            optimizer = torch.optim.Adam(self.parameters(), lr=hp.learning_rate,
                                         weight_decay=hp.weight_decay)
            schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=hp.lr_decay)
            rng = np.random.default_rng(train.seed)
            stopper = EarlyStopping(self, hp.patience)
            n_batches = self.n_batches(data, hp.batch_size)
            for epoch in range(1, train.epochs + 1):
                epoch_start = time.perf_counter()
                self.train()
                total, count = 0.0, 0
                bar = tqdm(total=n_batches, disable=not train.progress, leave=False,
                           desc=f"{self.name} epoch {epoch}/{train.epochs}", unit="batch",
                           dynamic_ncols=True)
                with bar:
                    for batch in self.iter_batches(data, hp.batch_size, rng, device):
                        loss = self.batch_loss(batch)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        total += float(loss.detach())
                        count += 1
                        bar.update(1)
                        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
                schedule.step()
                valid = evaluate(self, split, "valid", train.eval_batch_size, device)
                seconds = time.perf_counter() - epoch_start
                stop = stopper.step(epoch, total / max(count, 1), valid, seconds)
                if train.progress:
                    tqdm.write(f"{self.name} epoch {epoch}: loss {total / max(count, 1):.4f} "
                               f"valid NDCG@10 {valid['NDCG@10']:.4f} (best {stopper.best_score:.4f} "
                               f"@ {stopper.report.best_epoch}) {seconds:.1f}s")
                if stop:
                    break
            report = stopper.restore()
        self.eval()
        report.seconds = time.perf_counter() - start
        return report

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        torch.save(state, directory / "model.pt")
        meta = {"model": self.name, "n_items": self.n_items, "params": self.params.model_dump()}
        (directory / "params.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, device: str = "auto") -> "NeuralRecommender":
        directory = Path(directory)
        meta = json.loads((directory / "params.json").read_text())
        if meta.get("model", cls.name) != cls.name:
            raise ValueError(f"{directory} holds a {meta['model']!r} model, not {cls.name!r}")
        model = cls(n_items=int(meta["n_items"]), params=cls.params_type(**meta["params"]))
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.to(resolve_device(device))
        model.eval()
        return model


class deterministic:
    """Seed python, numpy and torch; make torch deterministic; restore on exit."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> "deterministic":
        self._was = torch.are_deterministic_algorithms_enabled()
        self._warn = torch.is_deterministic_algorithms_warn_only_enabled()
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.use_deterministic_algorithms(self._was, warn_only=self._warn)


class WindowedSequenceModel(NeuralRecommender):
    """A causal sequence encoder trained with the all-positions objective.

    Subclasses implement :meth:`sequence_output` (``[B, L, d]`` causal outputs).
    Params must have ``max_len`` and ``window_stride``.
    """

    @abstractmethod
    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """Causal outputs ``[B, L, d]``: position ``i`` depends on ``items[:, :i+1]`` only."""

    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        items, lengths = truncate_right_padded(items, lengths, self.params.max_len)
        out = self.sequence_output(items)
        last = (lengths - 1).clamp(min=0)
        return out[torch.arange(out.shape[0], device=out.device), last]

    def training_data(self, split: LeaveOneOut) -> tuple[torch.Tensor, ...]:
        max_len = min(split.max_len, self.params.max_len)
        stride = min(self.params.window_stride, max_len)
        inputs, targets, lengths = causal_windows(split.train, max_len, stride)
        # Sort-free bucketing is unnecessary at this size; keep whole windows.
        return inputs, targets, lengths

    def n_batches(self, data: tuple[torch.Tensor, ...], batch_size: int) -> int:
        return math.ceil(len(data[0]) / batch_size)

    def iter_batches(self, data: tuple[torch.Tensor, ...], batch_size: int,
                     rng: np.random.Generator, device: torch.device) -> Iterator[Any]:
        inputs, targets, lengths = data
        order = torch.from_numpy(rng.permutation(len(inputs)))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = int(lengths[idx].max())  # trim trailing all-padding columns
            yield (inputs[idx, :width].to(device), targets[idx, :width].to(device))

    def batch_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        out = self.sequence_output(inputs)
        mask = targets > 0
        return self.ce_loss(out[mask], targets[mask])


class PrefixSequenceModel(NeuralRecommender):
    """A model trained on :func:`prefix_samples`: one forward pass per (prefix, target).

    The subclass's :meth:`encode` gives the prefix representation; params must
    have ``max_len``.
    """

    def training_data(self, split: LeaveOneOut) -> PrefixSamples:
        return prefix_samples(split.train, min(split.max_len, self.params.max_len))

    def n_batches(self, data: PrefixSamples, batch_size: int) -> int:
        return math.ceil(len(data) / batch_size)

    def iter_batches(self, data: PrefixSamples, batch_size: int, rng: np.random.Generator,
                     device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.from_numpy(rng.permutation(len(data)))
        for start in range(0, len(order), batch_size):
            yield tuple(t.to(device) for t in data.gather(order[start:start + batch_size]))

    def batch_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        items, lengths, targets = batch
        return self.ce_loss(self.encode(items, lengths), targets)
