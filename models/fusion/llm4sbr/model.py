"""LLM4SBR's trained stage (Qiao et al., arXiv 2402.13840) on a frozen base model.

The base model gives the two views: the **local** view is the base item
table's row of the session's last item, the **global** view is E_base (the
base model's attention/recurrence over the session). The two LLM-inferred
interests (long-term, short-term; stage 1, offline) arrive as text-space
vectors ``h = Σ w · e_item`` over their localized items, are projected by one
shared linear layer (as in the authors' code), and

* are aligned with their view (short with local, long with global) by
  :func:`~models.fusion.llm4sbr.losses.align_uniform`, weighted by τ;
* gate it: ``α = 1 + qᵀσ(H_view + h)``; ``H = W [H_local·α_short ; H_global·α_long]``;
  scores ``H @ items.T``.

Deviation from the authors' ``α = qᵀσ(·)``: the gate is offset by 1 so that with
``q = 0`` and ``W = [0 | I]`` (``identity_init``) the model starts exactly as the
base model, as every fused model here does, and early stopping can keep the
base. The function family is the same up to that constant.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from models.fusion.base import BASE, FusionStrategy
from models.fusion.llm4sbr.losses import align_uniform

if TYPE_CHECKING:
    from models.fusion.settings import FusionSettings

LONG, SHORT, LAST = "long", "short", "last"


class LLM4SBRFusion(FusionStrategy):
    """Local/global views gated by projected LLM interests, with alignment + uniformity.

    Args:
        n_items: real items (indices ``1..n_items``).
        base_dim: size of E_base (and of the item table).
        text_dim: size of the interest vectors (the sentence encoder's item vectors).
        tau: weight of the alignment + uniformity terms in :meth:`training_loss`.
        align: False is the "without alignment" ablation (gating only).
        item_init: initial item table ``[n_items + 1, base_dim]`` (the base model's).
        identity_init: ``W = [0 | I]`` and ``q = 0``: the scores start as ``E_base @ items.T``.

    Shapes:
        ``forward(e_base [B, base_dim], {"last": [B], "long": [B, text_dim],
        "short": [B, text_dim]}, zero) -> [B, n_items + 1]``; branches
        ``("long", "short", "base")``; zeroing an interest replaces its projected
        vector by zeros (the view's gate then reads the view alone).
    """

    name = "llm4sbr"

    def __init__(self, n_items: int, base_dim: int, *, text_dim: int, tau: float = 0.1,
                 align: bool = True, item_init: Tensor | None = None,
                 identity_init: bool = True) -> None:
        super().__init__()
        if n_items < 1 or base_dim < 1 or text_dim < 1:
            raise ValueError(f"n_items, base_dim and text_dim must be positive, got "
                             f"{n_items}, {base_dim}, {text_dim}")
        self.n_items, self.base_dim, self.text_dim = n_items, base_dim, text_dim
        self.tau, self.align = float(tau), bool(align)
        self.item_embedding = nn.Embedding(n_items + 1, base_dim, padding_idx=0)
        with torch.no_grad():
            if item_init is not None:
                if tuple(item_init.shape) != (n_items + 1, base_dim):
                    raise ValueError(f"item_init must be [{n_items + 1}, {base_dim}], got "
                                     f"{tuple(item_init.shape)}")
                self.item_embedding.weight.copy_(item_init)
            else:
                bound = 1.0 / math.sqrt(base_dim)
                self.item_embedding.weight.uniform_(-bound, bound)
                self.item_embedding.weight[0].zero_()
        self.text_to_view = nn.Linear(text_dim, base_dim)
        self.gate_long = nn.Linear(base_dim, 1, bias=False)
        self.gate_short = nn.Linear(base_dim, 1, bias=False)
        self.project = nn.Linear(2 * base_dim, base_dim)
        if identity_init:
            with torch.no_grad():
                self.gate_long.weight.zero_()
                self.gate_short.weight.zero_()
                self.project.weight.zero_()
                self.project.bias.zero_()
                self.project.weight[:, base_dim:] = torch.eye(base_dim)

    @property
    def branches(self) -> tuple[str, ...]:
        return (LONG, SHORT, BASE)

    def views(self, e_base: Tensor, inputs: Mapping[str, Any],
              zero: Collection[str] = ()) -> dict[str, Tensor]:
        """The local and global views and the projected interests (zeroed ones as zeros).

        Shapes:
            each ``[B, base_dim]``.
        """
        zero = self.check_zero(zero)
        if e_base.ndim != 2 or e_base.shape[1] != self.base_dim:
            raise ValueError(f"e_base must be [B, {self.base_dim}], got {tuple(e_base.shape)}")
        local = self.item_embedding(inputs[LAST])
        out = {"local": local, "global": torch.zeros_like(e_base) if BASE in zero else e_base}
        for name in (LONG, SHORT):
            projected = self.text_to_view(inputs[name])
            out[name] = torch.zeros_like(projected) if name in zero else projected
        return out

    def gates(self, views: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(α_long, α_short)``, each ``[B, 1]``."""
        alpha_long = 1 + self.gate_long(torch.sigmoid(views["global"] + views[LONG]))
        alpha_short = 1 + self.gate_short(torch.sigmoid(views["local"] + views[SHORT]))
        return alpha_long, alpha_short

    def fuse(self, views: Mapping[str, Tensor]) -> Tensor:
        """``W [local·α_short ; global·α_long] + b``, ``[B, base_dim]``."""
        alpha_long, alpha_short = self.gates(views)
        return self.project(torch.cat([views["local"] * alpha_short,
                                       views["global"] * alpha_long], dim=-1))

    def forward(self, e_base: Tensor, inputs: Mapping[str, Any],
                zero: Collection[str] = ()) -> Tensor:
        return self.fuse(self.views(e_base, inputs, zero)) @ self.item_embedding.weight.T

    def training_loss(self, e_base: Tensor, inputs: Mapping[str, Any], targets: Tensor) -> Tensor:
        """Cross-entropy plus ``τ (align_uniform(global, long) + align_uniform(local, short))``."""
        views = self.views(e_base, inputs)
        loss = self.loss(self.fuse(views) @ self.item_embedding.weight.T, targets)
        if self.align:
            loss = loss + self.tau * (align_uniform(views["global"], views[LONG])
                                      + align_uniform(views["local"], views[SHORT]))
        return loss

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {LAST: torch.tensor([int(s[LAST]) for s in samples], dtype=torch.long),
                LONG: torch.stack([torch.as_tensor(s[LONG], dtype=torch.float32)
                                   for s in samples]),
                SHORT: torch.stack([torch.as_tensor(s[SHORT], dtype=torch.float32)
                                    for s in samples])}

    def freeze(self, settings: FusionSettings) -> None:
        """``freeze_items``: the item table (and so the local view) stays the base model's."""
        if settings.freeze_items:
            self.item_embedding.weight.requires_grad_(False)
