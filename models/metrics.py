"""Full-ranking metrics: HR@K, NDCG@K and MRR@K from the rank of a single target.

Ranks are 0-based: rank 0 means the target is the top item. Ties are broken
deterministically by item index (lower index first), the same order a stable
descending sort gives, so top-k lists and metrics always agree.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_KS = (5, 10, 20)
METRIC_NAMES = ("HR", "NDCG", "MRR")


def mask_padding(scores: torch.Tensor) -> torch.Tensor:
    """Set the padding column (item 0, the last dimension's first entry) to ``-inf``, in place.

    Every model scores ``n_items + 1`` slots; slot 0 is never an item.
    """
    scores[..., 0] = -torch.inf
    return scores


def stable_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` best scores along the last dimension, best first, ties to the lower index.

    The order :func:`target_ranks` ranks by, so a top-k list and the metrics never disagree.

    Shapes:
        ``[..., N]`` -> ``[..., min(k, N)]`` int64.
    """
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]


def top_items(scores: torch.Tensor, k: int) -> list[int]:
    """:func:`stable_top_k` of one ``[N]`` score row, leaving out ``-inf`` (masked) items."""
    return stable_top_k(scores, min(k, int(torch.isfinite(scores).sum()))).tolist()


#: The smooth rank's temperature is the spread of this many best scores of the row.
SOFT_RANK_SPREAD_OF = 50


def soft_rank(scores: torch.Tensor, item: int, temperature: float) -> float:
    """A smooth rank of ``item`` in the one row ``scores [N]`` (masked items ``-inf``).

    The sum over the other ranked items of ``sigmoid((s_j - s_item) / temperature)``:
    the expected number of items above it if scores carried logistic noise of
    that scale (the rank surrogate of Qin et al., 2010). It moves with every
    competitor that gains on the item or falls behind it, also where the exact
    rank does not change.
    """
    return float(soft_ranks(scores[None], item, temperature)[0])


def soft_ranks(scores: torch.Tensor, item: int, temperature: float) -> torch.Tensor:
    """:func:`soft_rank` of ``item`` in each row of ``scores``.

    Shapes:
        ``[R, N]`` (masked items ``-inf``; ``item`` finite in every row) -> ``[R]`` float64.
    """
    # In float64: a sum of ~1,700 terms, whose float32 rounding would swamp small changes.
    # A masked item's sigmoid((-inf - s) / t) is exactly 0; the item's own term is 0.5.
    rows = scores.double()
    return torch.sigmoid((rows - rows[:, item:item + 1]) / temperature).sum(dim=1) - 0.5


def soft_rank_temperature(scores: torch.Tensor) -> float:
    """The standard deviation of the row's :data:`SOFT_RANK_SPREAD_OF` best finite scores
    (the scale on which the top of the list is decided); 1.0 for a flat row."""
    finite = scores[torch.isfinite(scores)]
    best = finite.topk(min(SOFT_RANK_SPREAD_OF, len(finite))).values
    spread = float(best.std()) if len(best) > 1 else 0.0
    return spread if spread > 0 else 1.0


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among all items.

    Args:
        scores: ``[B, N]`` scores; column 0 (padding) must already be ``-inf``.
        targets: ``[B]`` target item indices.

    Returns:
        ``[B]`` int64 ranks.
    """
    if torch.isnan(scores).any():
        # NaN compares false with everything: a NaN target would get rank 0 (a hit).
        raise ValueError("scores contain NaN; cannot rank targets")
    target_scores = scores.gather(1, targets.view(-1, 1))
    higher = (scores > target_scores).sum(dim=1)
    index = torch.arange(scores.shape[1], device=scores.device).view(1, -1)
    tied_before = ((scores == target_scores) & (index < targets.view(-1, 1))).sum(dim=1)
    return (higher + tied_before).to(torch.int64)


def per_user_metrics(ranks: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user metric values (for paired bootstrap and error analysis)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = hit.astype(np.float64)
        out[f"NDCG@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
        out[f"MRR@{k}"] = np.where(hit, 1.0 / (ranks + 1.0), 0.0)
    return out


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """Mean HR@K, NDCG@K and MRR@K over users, keys ordered HR, NDCG, MRR by K."""
    values = per_user_metrics(ranks, ks)
    ordered = [f"{m}@{k}" for m in METRIC_NAMES for k in ks]
    if len(ranks) == 0:
        return {key: 0.0 for key in ordered}
    return {key: float(values[key].mean()) for key in ordered}
