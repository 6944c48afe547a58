"""Full-ranking evaluation of any :class:`Recommender` on a ``loo`` split."""

from __future__ import annotations

import numpy as np
import torch

from models.metrics import mask_padding, metrics_from_ranks, target_ranks
from models.protocol import EvalSet, LeaveOneOut, Split, pad_sequences
from models.recommenders.base import Recommender


@torch.no_grad()
def rank_targets(model: Recommender, eval_set: EvalSet, max_len: int,
                 batch_size: int = 1024, device: torch.device | None = None) -> np.ndarray:
    """0-based rank of each user's target among all items (history not masked)."""
    ranks = []
    for start in range(0, len(eval_set.targets), batch_size):
        inputs = eval_set.inputs[start:start + batch_size]
        items, lengths = pad_sequences(inputs, max_len)
        targets = torch.from_numpy(eval_set.targets[start:start + batch_size])
        if device is not None:
            items, lengths, targets = items.to(device), lengths.to(device), targets.to(device)
        scores = model.score(items, lengths).float()
        mask_padding(scores)
        ranks.append(target_ranks(scores, targets).cpu().numpy())
    return np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)


def evaluate(model: Recommender, split: LeaveOneOut, which: Split = "test",
             batch_size: int = 1024, device: torch.device | None = None) -> dict[str, float]:
    """HR/NDCG/MRR at 5, 10, 20 on the ``valid`` or ``test`` part of ``split``."""
    ranks = rank_targets(model, split.eval_set(which), split.max_len, batch_size, device)
    return metrics_from_ranks(ranks)
