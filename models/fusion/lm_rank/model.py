"""Zero-shot LM ranking as a fusion strategy: the base model's top-N reordered by the LLM.

For each point the base model's top-N candidates are rescored by

    mix = (1 - λ) · z(base score) + λ · z(LM score)

where ``z`` standardizes over the point's N candidates (so one λ fits every
point, whatever the spread of its scores) and the LM score is the per-token
log-likelihood of the title after the user's recent titles
(:mod:`reasoning.lm_scores`). The candidates stay above every other item, and
the items outside the top-N keep the base model's order below them.

Nothing is learned by gradient: λ is chosen on validation NDCG@10 from a
grid (:meth:`LMRankFusion.validation_choices`, which the fit loop tries like
epochs, the base model, λ = 0, first). ``lm-rerank`` searches the grid;
``lm-only`` is λ = 1 (the LM alone over the base model's top-N).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from models.fusion.base import BASE, FusionStrategy

LM = "lm"
CANDIDATES, SCORES, SCORED = "candidates", "lm_scores", "scored"


def standardize(values: Tensor) -> Tensor:
    """z-scores along the last dimension (a constant row gives zeros)."""
    mean = values.mean(dim=-1, keepdim=True)
    std = values.std(dim=-1, keepdim=True, unbiased=False)
    return (values - mean) / std.clamp_min(1e-8)


def rerank(base: Tensor, candidates: Tensor, lm_scores: Tensor, weight: float,
           scored: Tensor | None = None) -> Tensor:
    """Scores of every item with each row's candidates reordered by the mix (see the module).

    Args:
        base: ``[B, n_items + 1]`` the base model's scores.
        candidates: ``[B, N]`` item indices (the base model's top-N).
        lm_scores: ``[B, N]`` their LM scores.
        weight: λ, the LM's share.
        scored: ``[B]`` rows that have LM scores (others keep the base scores).

    Shapes:
        returns ``[B, n_items + 1]``.
    """
    mix = ((1.0 - weight) * standardize(base.gather(1, candidates))
           + weight * standardize(lm_scores))
    # Above every item outside the top-N (which keeps the base order below them).
    floor = base.max(dim=1, keepdim=True).values
    lifted = floor + 1.0 + mix - mix.min(dim=1, keepdim=True).values
    out = base.clone().scatter_(1, candidates, lifted)
    if scored is None:
        return out
    return torch.where(scored[:, None], out, base)


class LMRankFusion(FusionStrategy):
    """The base model's scores with its top-N reordered by the LM (see the module docstring).

    Args:
        n_items: real items (indices ``1..n_items``).
        base_dim: size of E_base.
        weights: the λ grid; the model starts at ``weights[0]`` and the fit loop
            tries the rest on validation.
        item_init: the base model's item table ``[n_items + 1, base_dim]`` (a
            frozen buffer: the base scores are exactly the base model's).
        identity_init: unused (the start is ``weights[0]``: λ = 0 is the base model).

    Shapes:
        ``forward(e_base [B, base_dim], {"candidates": [B, N], "lm_scores": [B, N],
        "scored": [B]}, zero) -> [B, n_items + 1]``; branches ``("lm", "base")``:
        zeroing ``lm`` gives the base model's ranking, zeroing ``base`` the LM's
        alone over the candidates.
    """

    name = "lm-rank"

    def __init__(self, n_items: int, base_dim: int, *, weights: Sequence[float] = (0.0,),
                 item_init: Tensor | None = None, identity_init: bool = True) -> None:
        super().__init__()
        if n_items < 1 or base_dim < 1:
            raise ValueError(f"n_items and base_dim must be positive, got {n_items}, {base_dim}")
        if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
            raise ValueError(f"weights must be a non-empty grid in [0, 1], got {list(weights)}")
        self.n_items, self.base_dim = n_items, base_dim
        self.weights = tuple(float(w) for w in weights)
        table = torch.zeros(n_items + 1, base_dim)
        if item_init is not None:
            if tuple(item_init.shape) != (n_items + 1, base_dim):
                raise ValueError(f"item_init must be [{n_items + 1}, {base_dim}], got "
                                 f"{tuple(item_init.shape)}")
            table = item_init.detach().float().clone()
        self.register_buffer("items", table)
        # λ is chosen, not learned: a parameter without gradient, so it is saved in
        # model.pt and kept by early stopping, and the scoring loops find the device.
        self.weight = nn.Parameter(torch.tensor(self.weights[0]), requires_grad=False)

    @property
    def branches(self) -> tuple[str, ...]:
        return (LM, BASE)

    @property
    def lm_weight(self) -> float:
        return float(self.weight)

    def forward(self, e_base: Tensor, inputs: Mapping[str, Any],
                zero: Collection[str] = ()) -> Tensor:
        zero = self.check_zero(zero)
        base = e_base @ self.items.T
        if LM in zero:
            return base
        weight = 1.0 if BASE in zero else self.lm_weight
        return rerank(base, inputs[CANDIDATES], inputs[SCORES], weight, inputs[SCORED])

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {CANDIDATES: torch.stack([torch.as_tensor(s[CANDIDATES], dtype=torch.long)
                                         for s in samples]),
                SCORES: torch.stack([torch.as_tensor(s[SCORES], dtype=torch.float32)
                                     for s in samples]),
                SCORED: torch.tensor([bool(s[SCORED]) for s in samples], dtype=torch.bool)}

    def validation_choices(self) -> Sequence[str]:
        return [f"λ={w:g}" for w in self.weights[1:]]

    def apply_choice(self, index: int) -> None:
        with torch.no_grad():
            self.weight.fill_(self.weights[index + 1])

    def training_loss(self, e_base: Tensor, inputs: Mapping[str, Any], targets: Tensor) -> Tensor:
        raise NotImplementedError("LM ranking learns nothing by gradient: λ is chosen on "
                                  "validation (validation_choices)")


def weight_grid(step: float = 0.05) -> tuple[float, ...]:
    """λ from 0 (the base model) to 1 (the LM alone) in ``step``s."""
    count = int(round(1.0 / step))
    if not math.isclose(count * step, 1.0):
        raise ValueError(f"the grid step must divide 1, got {step}")
    return tuple(round(i * step, 6) for i in range(count + 1))

