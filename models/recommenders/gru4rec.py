"""GRU4Rec (Hidasi et al., 2016) in RecBole's form, trained on all positions.

Item embedding -> dropout -> GRU -> linear projection back to the embedding
size; the projection at the last real position is the session representation,
scored against the (tied) item embeddings with a full softmax.

Training windows that continue a long history backpropagate through their last
``grad_window`` steps only (truncated backprop through time, see
:class:`GRU4RecParams`): same accuracy over seeds, about 40% less time per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from models.protocol import LeaveOneOut
from models.recommenders.neural import NeuralParams, WindowedSequenceModel


class GRU4RecParams(NeuralParams):
    """GRU4Rec hyper-parameters (defaults are the values tuned on ml-100k)."""

    embedding_size: int = Field(64, ge=1)
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1, description="on the input item embeddings")
    max_len: int = Field(50, ge=1, description="longest input; older items are dropped")
    window_stride: int = Field(10, ge=1, description="step between training windows")
    # 10: at 3 seeds, test NDCG@10 0.0603 +- 0.0007 against 0.0595 +- 0.0067 with full
    # backprop (validation 0.0687 against 0.0699), at 4.1 instead of 6.6 s/epoch.
    grad_window: int | None = Field(
        10, ge=1, description="truncated backprop: a window that continues a history "
                                "backpropagates through its last grad_window steps only; "
                                "the steps before only warm the GRU state up (None: all)")
    # 32 windows (~500 targets) a step, as RecBole's tuned batch of 256 prefixes takes many
    # small steps: over seeds 2020, 1, 2 best validation NDCG@10 0.0774 against 0.0737 with 64
    # and 0.0700 with 128 (issue #22), at about the same seconds per epoch on one thread.
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # 10, RecBole's stopping_step: GRU4Rec's validation curve has dips of several epochs;
    # over 3 seeds validation NDCG@10 0.0700 against 0.0687 with 5.
    patience: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _grad_window_covers_the_targets(self) -> "GRU4RecParams":
        # A continuing window predicts only its last window_stride items.
        if self.grad_window is not None and self.grad_window < self.window_stride:
            raise ValueError(f"grad_window must be at least window_stride ({self.window_stride}), "
                             f"got {self.grad_window}")
        return self


class GRU4Rec(WindowedSequenceModel):
    """Session-based recommendation with a GRU over the item sequence.

    Args:
        n_items: number of real items (indices 1..n_items; 0 is padding).
        params: :class:`GRU4RecParams`.

    Shapes:
        ``score(items [B, L], lengths [B]) -> [B, n_items + 1]``;
        ``encode(items, lengths) -> [B, embedding_size]``.
    """

    name = "gru4rec"
    params_type = GRU4RecParams
    params: GRU4RecParams

    def __init__(self, n_items: int, params: GRU4RecParams | None = None) -> None:
        super().__init__(n_items, params)
        p = self.params
        self.item_embedding = nn.Embedding(n_items + 1, p.embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(p.dropout)
        self.gru = nn.GRU(p.embedding_size, p.hidden_size, num_layers=p.num_layers,
                          bias=False, batch_first=True)
        self.dense = nn.Linear(p.hidden_size, p.embedding_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal embedding, Xavier-uniform GRU weights (as RecBole)."""
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        for name, weight in self.gru.named_parameters():
            if "weight" in name:
                nn.init.xavier_uniform_(weight)
        bound = 1 / math.sqrt(self.params.hidden_size)
        nn.init.uniform_(self.dense.weight, -bound, bound)
        nn.init.uniform_(self.dense.bias, -bound, bound)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """Causal outputs.

        Args:
            items: ``[B, L]`` right-padded item indices.

        Shapes:
            returns ``[B, L, embedding_size]``.
        """
        emb = self.emb_dropout(self.item_embedding(items))
        out, _ = self.gru(emb)
        return self.dense(out)

    # ------------------------------------------- truncated backprop (grad_window)
    # A history longer than max_len gives windows that continue it: max_len inputs,
    # targets only in the last window_stride positions. Backpropagating through all
    # max_len steps to reach them costs most of an epoch; with grad_window set, the
    # first max_len - grad_window steps of such a window run without autograd and
    # only hand the GRU state on. Windows that start a history keep full backprop.

    def training_data(self, split: LeaveOneOut) -> tuple[torch.Tensor, ...]:
        """The windows; with ``grad_window`` also a ``[W]`` mask of the continuing ones."""
        inputs, targets, lengths = super().training_data(split)
        warm_up = self._warm_up_steps(inputs.shape[1])
        if not warm_up:  # plain all-positions training, batches as the base class makes them
            return inputs, targets, lengths
        continuing = (lengths == inputs.shape[1]) & ~(targets[:, :warm_up] > 0).any(dim=1)
        return inputs, targets, lengths, continuing

    def _warm_up_steps(self, width: int) -> int:
        window = self.params.grad_window
        return 0 if window is None else max(0, width - window)

    def _groups(self, data: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        continuing = data[3]
        return [torch.nonzero(~continuing).flatten(), torch.nonzero(continuing).flatten()]

    def n_batches(self, data: tuple[torch.Tensor, ...], batch_size: int) -> int:
        if len(data) == 3:
            return super().n_batches(data, batch_size)
        return sum(math.ceil(len(group) / batch_size) for group in self._groups(data))

    def iter_batches(self, data: tuple[torch.Tensor, ...], batch_size: int,
                     rng: np.random.Generator, device: torch.device) -> Iterator[Any]:
        """Shuffled batches of starting windows and of continuing ones, in shuffled order."""
        if len(data) == 3:
            yield from super().iter_batches(data, batch_size, rng, device)
            return
        inputs, targets, lengths, _ = data
        batches = []
        for warm_up, group in zip((0, self._warm_up_steps(inputs.shape[1])), self._groups(data)):
            group = group[torch.from_numpy(rng.permutation(len(group)))]
            batches += [(warm_up, group[i:i + batch_size]) for i in range(0, len(group), batch_size)]
        for b in rng.permutation(len(batches)):
            warm_up, idx = batches[b]
            width = int(lengths[idx].max())  # trim trailing all-padding columns
            yield inputs[idx, :width].to(device), targets[idx, :width].to(device), warm_up

    def batch_loss(self, batch: tuple[Any, ...]) -> torch.Tensor:
        if len(batch) == 2 or not batch[2]:
            return super().batch_loss(batch[:2])
        inputs, targets, warm_up = batch
        emb = self.emb_dropout(self.item_embedding(inputs))
        with torch.no_grad():
            _, state = self.gru(emb[:, :warm_up])
        out, _ = self.gru(emb[:, warm_up:], state)
        targets = targets[:, warm_up:]
        mask = targets > 0
        return self.ce_loss(self.dense(out[mask]), targets[mask])
