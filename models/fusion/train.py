"""Training and scoring loops shared by every fusion strategy.

The base recommender is trained first and frozen: its E_base for each sample
is computed once by the caller and stored in the sample, so an epoch costs
only the strategy's own forward and backward passes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.fusion.base import FusionStrategy
from models.metrics import mask_padding


@dataclass
class FusionSample:
    """One training or evaluation case.

    Attributes:
        e_base: ``[d_base]`` the frozen base model's session vector for the prefix.
        inputs: the strategy's per-sample inputs (``Variant.sample_inputs``).
        target: the next item (``1..n_items``).
    """

    e_base: Tensor
    inputs: Mapping[str, Any]
    target: int


def collate_samples(strategy: FusionStrategy, samples: Sequence[FusionSample],
                    device: torch.device | str = "cpu") -> tuple[Tensor, dict[str, Any], Tensor]:
    """``(e_base [B, d_base], inputs, targets [B])`` on ``device``."""
    e_base = torch.stack([s.e_base for s in samples]).to(device)
    inputs = {k: v.to(device) if hasattr(v, "to") else v
              for k, v in strategy.collate([s.inputs for s in samples]).items()}
    targets = torch.tensor([s.target for s in samples], dtype=torch.long, device=device)
    return e_base, inputs, targets


def _batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_epoch(strategy: FusionStrategy, samples: Sequence[FusionSample],
                optimizer: torch.optim.Optimizer, *, batch_size: int = 128,
                rng: np.random.Generator | None = None) -> float:
    """One pass over ``samples`` (shuffled when ``rng`` is given); returns the mean loss.

    Args:
        strategy: the model, trained in place (put in train mode).
        samples: cases with precomputed E_base.
        optimizer: over the strategy's parameters.
        batch_size: samples per step.
        rng: shuffles the order; None keeps it.
    """
    if not samples:
        raise ValueError("no samples to train on")
    device = next(strategy.parameters()).device
    strategy.train()
    total, count = 0.0, 0
    for idx in _batches(len(samples), batch_size, rng):
        e_base, inputs, targets = collate_samples(strategy, [samples[i] for i in idx], device)
        loss = strategy.training_loss(e_base, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    return total / count


@torch.no_grad()
def score_samples(strategy: FusionStrategy, samples: Sequence[FusionSample], *,
                  batch_size: int = 256, zero: Collection[str] = ()) -> Tensor:
    """Scores of every sample (eval mode), column 0 set to ``-inf``.

    Shapes:
        returns ``[len(samples), n_items + 1]`` on the CPU, in sample order.
    """
    device = next(strategy.parameters()).device
    strategy.eval()
    rows = []
    for idx in _batches(len(samples), batch_size, None):
        e_base, inputs, _ = collate_samples(strategy, [samples[i] for i in idx], device)
        rows.append(strategy(e_base, inputs, zero=zero).cpu())
    scores = torch.cat(rows) if rows else torch.empty(0, strategy.n_items + 1)
    return mask_padding(scores)
