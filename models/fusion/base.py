"""The fusion interface: base recommender representation + strategy inputs -> item scores.

A :class:`FusionStrategy` combines the base recommender's session vector
E_base (``Recommender.encode(items, lengths)``, computed by the caller, the
base model usually frozen) with inputs of its own (reasoning graphs for
LLMRG, the plain session graph for the control; later aligned intents, soft
tokens or LM rankings) and scores every item. Each strategy names its
*branches*: the parts whose contribution can be switched off (``zero=``) to
measure what each adds to a score.

:class:`ConcatFusion` is the common case, LLMRG's: each branch encoder gives
a vector, ``[E_1; ...; E_k; E_base]`` goes through one linear layer, and the
result is dotted with the item embedding table. Zeroing a branch replaces its
vector by zeros before that layer, so it removes exactly that branch's term.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

if TYPE_CHECKING:
    from models.fusion.settings import FusionSettings

BASE = "base"


class FusionStrategy(nn.Module, ABC):
    """Scores all items from E_base and strategy-specific inputs.

    Subclasses set ``name``, ``n_items`` and ``base_dim``, and implement
    :attr:`branches`, :meth:`forward` and :meth:`collate`. Their constructor is
    ``(n_items, base_dim, *, item_init=None, identity_init=True, **own)``, so
    fitting and loading create every strategy alike. Column 0 of the scores is
    padding: callers mask it (as with ``Recommender.score``); :meth:`loss`
    ignores it.

    Training hooks (``models.fusion.fit.fit_fusion`` calls them in this order):
    :meth:`freeze` before the optimizer is built, :meth:`attach` once it is,
    then :meth:`training_loss` per batch. A strategy with extra losses (an
    alignment term, say) overrides :meth:`training_loss`.
    """

    name: ClassVar[str]
    n_items: int
    base_dim: int

    @property
    @abstractmethod
    def branches(self) -> tuple[str, ...]:
        """Names :meth:`forward` accepts in ``zero`` (including ``"base"``)."""

    @abstractmethod
    def forward(self, e_base: Tensor, inputs: Mapping[str, Any],
                zero: Collection[str] = ()) -> Tensor:
        """Scores of every item.

        Args:
            e_base: ``[B, d_base]`` base session representations.
            inputs: the strategy's batched inputs (:meth:`collate` output).
            zero: branches whose contribution is switched off.

        Shapes:
            returns ``[B, n_items + 1]``.
        """

    @abstractmethod
    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Batch per-sample inputs into the ``inputs`` of :meth:`forward`."""

    def check_zero(self, zero: Collection[str]) -> frozenset[str]:
        """``zero`` as a set; ValueError naming the branches when one is unknown."""
        unknown = set(zero) - set(self.branches)
        if unknown:
            raise ValueError(f"unknown branch(es) {sorted(unknown)}; "
                             f"{self.name} has {list(self.branches)}")
        return frozenset(zero)

    def loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Mean full-softmax cross-entropy over the real items.

        Args:
            scores: ``[B, n_items + 1]`` from :meth:`forward`.
            targets: ``[B]`` item indices in ``1..n_items``.
        """
        return F.cross_entropy(scores[:, 1:], targets - 1)

    def training_loss(self, e_base: Tensor, inputs: Mapping[str, Any], targets: Tensor) -> Tensor:
        """The loss one training step minimizes: by default :meth:`loss` of :meth:`forward`.

        Args:
            e_base: ``[B, d_base]``.
            inputs: :meth:`collate` output.
            targets: ``[B]`` item indices in ``1..n_items``.
        """
        return self.loss(self(e_base, inputs), targets)

    def validation_choices(self) -> Sequence[str]:
        """Labels of settings chosen on validation instead of learned (none by default).

        A strategy with choices (an interpolation weight, say) is not trained by
        gradient: ``fit_fusion`` applies each in turn (:meth:`apply_choice`),
        scores it on validation like an epoch and keeps the best, the starting
        point (epoch 0) included.
        """
        return ()

    def apply_choice(self, index: int) -> None:
        """Switch to ``validation_choices()[index]``."""
        raise NotImplementedError(f"{self.name} has no validation choices")

    def freeze(self, settings: FusionSettings) -> None:
        """Switch off gradients of what ``settings`` keeps fixed (before the optimizer exists)."""

    def attach(self, optimizer: torch.optim.Optimizer, settings: FusionSettings) -> None:
        """Hook into the optimizer (e.g. restore fixed slices after each step)."""


class ConcatFusion(FusionStrategy):
    """``scores = (W [E_1; ...; E_k; E_base] + b) @ items.T`` over branch encoders.

    Args:
        n_items: real items (indices ``1..n_items``; 0 is padding).
        base_dim: size of E_base.
        dim: size of the item table and the fused vector (default ``base_dim``).
        encoders: builds the branch encoders (name -> module with a ``hidden``
            size, called on ``inputs[name]``) from the shared item table.
        item_init: optional ``[n_items + 1, dim]`` initial item table, e.g. the
            base model's ``item_embeddings()``.
        identity_init: start the projection as ``[0 ... 0 | I]`` so the fused
            scores begin equal to ``E_base @ items.T`` (the base model's, when
            ``item_init`` is its table) and training departs from the base.
            The branch encoders then get gradients from the second step on,
            once their projection blocks are non-zero. Needs ``dim == base_dim``.

    Shapes:
        ``forward(e_base [B, base_dim], inputs) -> [B, n_items + 1]``;
        :meth:`representations` -> ``{branch: [B, d_branch]}``;
        :meth:`fuse` -> ``[B, dim]``.
    """

    def __init__(self, n_items: int, base_dim: int, *,
                 encoders: Callable[[nn.Embedding], Mapping[str, nn.Module]],
                 dim: int | None = None, item_init: Tensor | None = None,
                 identity_init: bool = True) -> None:
        super().__init__()
        if n_items < 1 or base_dim < 1:
            raise ValueError(f"n_items and base_dim must be positive, got {n_items}, {base_dim}")
        dim = base_dim if dim is None else dim
        self.n_items = n_items
        self.base_dim = base_dim
        self.dim = dim
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        if item_init is not None:
            if tuple(item_init.shape) != (n_items + 1, dim):
                raise ValueError(f"item_init must be [{n_items + 1}, {dim}], "
                                 f"got {tuple(item_init.shape)}")
            with torch.no_grad():
                self.item_embedding.weight.copy_(item_init)
        else:
            bound = 1.0 / math.sqrt(dim)
            with torch.no_grad():
                self.item_embedding.weight.uniform_(-bound, bound)
                self.item_embedding.weight[0].zero_()
        self.encoders = nn.ModuleDict(dict(encoders(self.item_embedding)))
        if BASE in self.encoders:
            raise ValueError(f"{BASE!r} is reserved for E_base")
        widths = [int(enc.hidden) for enc in self.encoders.values()] + [base_dim]
        self.project = nn.Linear(sum(widths), dim)
        if identity_init:
            if dim != base_dim:
                raise ValueError(f"identity_init needs dim == base_dim ({dim} != {base_dim})")
            with torch.no_grad():
                self.project.weight.zero_()
                self.project.bias.zero_()
                self.project.weight[:, -base_dim:] = torch.eye(base_dim)

    @property
    def branches(self) -> tuple[str, ...]:
        return (*self.encoders.keys(), BASE)

    def representations(self, e_base: Tensor, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        """Each branch's vector: the encoders' outputs and E_base."""
        if e_base.ndim != 2 or e_base.shape[1] != self.base_dim:
            raise ValueError(f"e_base must be [B, {self.base_dim}], got {tuple(e_base.shape)}")
        reps = {name: encoder(inputs[name]) for name, encoder in self.encoders.items()}
        reps[BASE] = e_base
        return reps

    def fuse(self, reps: Mapping[str, Tensor], zero: Collection[str] = ()) -> Tensor:
        """The fused vector ``[B, dim]`` with the ``zero`` branches' vectors replaced by zeros."""
        zero = self.check_zero(zero)
        parts = [torch.zeros_like(reps[n]) if n in zero else reps[n] for n in self.branches]
        return self.project(torch.cat(parts, dim=-1))

    def item_scores(self, fused: Tensor) -> Tensor:
        """``[B, dim]`` fused vectors -> ``[B, n_items + 1]`` scores."""
        return fused @ self.item_embedding.weight.T

    def forward(self, e_base: Tensor, inputs: Mapping[str, Any],
                zero: Collection[str] = ()) -> Tensor:
        return self.item_scores(self.fuse(self.representations(e_base, inputs), zero))

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Each branch's graphs batched with ``Batch.from_data_list`` (offsets included)."""
        return {name: Batch.from_data_list([s[name] for s in samples]) for name in self.encoders}

    def freeze(self, settings: FusionSettings) -> None:
        """``freeze_items``: the item table stays the base model's; ``freeze_base``: the
        projection's bias stays zero (its E_base block: :meth:`attach`)."""
        if settings.freeze_items:
            self.item_embedding.weight.requires_grad_(False)
        if settings.freeze_base:
            self.project.bias.requires_grad_(False)

    def attach(self, optimizer: torch.optim.Optimizer, settings: FusionSettings) -> None:
        """With ``freeze_base``, restore the projection's E_base columns after every step.

        They are a slice of one weight matrix, so they cannot leave the
        optimizer; restoring them after each step keeps them exactly fixed
        whatever Adam's moments or weight decay would do to them.
        """
        if not settings.freeze_base:
            return
        project = self.project
        width = self.base_dim
        frozen = project.weight.detach()[:, -width:].clone()

        def restore(*_: Any) -> None:
            with torch.no_grad():
                project.weight[:, -width:] = frozen

        optimizer.register_step_post_hook(restore)
