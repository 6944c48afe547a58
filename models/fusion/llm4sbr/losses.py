"""LLM4SBR's alignment and uniformity losses (Wang & Isola 2020, as the authors' code uses them).

From ``tsinghua-fib-lab/LLM4SBR`` ``model_LLM.py``: both sides are L2-normalized;
alignment is the mean squared distance of paired rows, uniformity the log of
the mean Gaussian potential ``exp(-2 ||x_i - x_j||^2)`` over distinct pairs;
a view and its text intent are aligned and each kept uniform:
``align(x, y) + (uniform(x) + uniform(y)) / 2``, weighted by τ (0.1) in the
training loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def alignment(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared L2 distance between the normalized rows of ``x`` and ``y``.

    Shapes:
        ``x, y [B, d]`` -> scalar.
    """
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(p=2, dim=1).pow(2).mean()


def uniformity(x: Tensor) -> Tensor:
    """``log mean_{i<j} exp(-2 ||x_i - x_j||^2)`` over normalized rows; 0 for fewer than 2 rows
    (no pair: the authors' code would give NaN on a batch of one).

    Shapes:
        ``x [B, d]`` -> scalar.
    """
    if x.shape[0] < 2:
        return x.new_zeros(())
    x = F.normalize(x, dim=-1)
    return torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log()


def align_uniform(view: Tensor, intent: Tensor) -> Tensor:
    """``alignment(view, intent) + (uniformity(view) + uniformity(intent)) / 2``.

    Shapes:
        ``view, intent [B, d]`` -> scalar.
    """
    return alignment(view, intent) + (uniformity(view) + uniformity(intent)) / 2
