"""LLM4SBR's per-point inputs: the stored interests and ``h = Σ w · e_item``.

Stage 1 (``reasoning.interests``, ``reasonrec fusion interests``) stores, per
user and window step, the LLM's long- and short-term answers and the r
catalogue items each localizes to, with weights summing to 1. Here they
become the model's interest vectors: ``h = Σ_i w_i · e_i``, where ``e_i`` is
item i's **text-encoder vector** (the sentence encoder that localized the
answer), as in the paper, whose intent localization averages the retrieved
items' text embeddings; the base model's item table is the behaviour side and
stays out of ``h``. An answer without a usable title has no items: its ``h``
is zero.

This module only reads data: the facade (``reasonrec.interests``) hands the
:class:`InterestProvider` a loader over the store (and the shipped bundle) and
the encoder's item vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from models.fusion.inputs import MissingInputsError
from models.fusion.strategy import Need

if TYPE_CHECKING:
    from models.fusion.samples import PointSet, UserGraph


@dataclass(frozen=True)
class Interest:
    """One inferred interest at one point.

    Attributes:
        text: the title parsed from the LLM's answer ("" when it had none).
        answer: the LLM's answer as generated (untrusted text).
        items: ``(catalogue index, weight)`` of its localized items, weights summing to 1.
    """

    text: str
    answer: str
    items: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class StoredInterests:
    """A user's stored interests, as the facade reads them.

    Attributes:
        window: the window they were built for (catalogue indices).
        points: window step -> ``(long-term, short-term)``.
        cost: what building them cost: ``llm_calls``, ``tokens`` (prompt + generated)
            and ``llm_seconds`` (KB hits cost nothing: the cost as built).
    """

    window: tuple[int, ...]
    points: Mapping[int, tuple[Interest, Interest]]
    cost: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PointInterests:
    """A point's two interests and their vectors ``h`` (``[text_dim]`` each)."""

    long: Interest
    short: Interest
    long_vector: Tensor
    short_vector: Tensor


#: What the provider gives each user: window step -> its interests.
UserInterestInputs = Mapping[int, PointInterests]


def interest_vector(items: Sequence[tuple[int, float]], item_vectors: np.ndarray) -> Tensor:
    """``h = Σ w · e_item`` over ``items``; zeros when there are none.

    Shapes:
        ``item_vectors [n_items + 1, text_dim]`` -> ``[text_dim]``.
    """
    h = np.zeros(item_vectors.shape[1], dtype=np.float32)
    for index, weight in items:
        h += np.float32(weight) * item_vectors[int(index)]
    return torch.from_numpy(h)


@dataclass(frozen=True)
class InterestSource:
    """Where the provider reads from (built by the facade).

    Attributes:
        identity: the store key's digest (joins the fused run's fingerprint).
        describe: the key in words, for error messages.
        load: ``user token -> StoredInterests`` or None when not built.
        item_vectors: ``[n_items + 1, text_dim]`` the encoder's unit item vectors.
        command: how to build missing interests.
    """

    identity: str
    describe: str
    load: Callable[[str], StoredInterests | None]
    item_vectors: np.ndarray
    command: str


class InterestProvider:
    """:class:`models.fusion.inputs.InputProvider` of :attr:`Need.LLM_INTERESTS`.

    Args:
        open_source: builds the :class:`InterestSource` on first use (it hashes
            the model file and loads the encoder's item vectors).
    """

    need = Need.LLM_INTERESTS

    def __init__(self, open_source: Callable[[], InterestSource]) -> None:
        self._open = open_source
        self._source: InterestSource | None = None
        self._cost: dict[str, float] | None = None

    @property
    def source(self) -> InterestSource:
        if self._source is None:
            self._source = self._open()
        return self._source

    def identity(self) -> str:
        return f"llm4sbr-interests:{self.source.identity}"

    def for_user(self, user: UserGraph, steps: Sequence[int]) -> UserInterestInputs | None:
        """``user``'s interests at ``steps``, or None when any is missing or was built for
        another window."""
        stored = self.source.load(user.user_id)
        if stored is None or list(stored.window) != user.window:
            return None
        if any(step not in stored.points for step in steps):
            return None
        vectors = self.source.item_vectors
        return {step: PointInterests(long, short, interest_vector(long.items, vectors),
                                     interest_vector(short.items, vectors))
                for step, (long, short) in stored.points.items()}

    def provide(self, users: Sequence[UserGraph], points: PointSet,
                item_table: Tensor) -> Mapping[str, UserInterestInputs]:
        steps: dict[str, list[int]] = {}
        for point in points.points:
            steps.setdefault(point.user.user_id, []).append(point.step)
        found, missing = {}, []
        total = {"llm_calls": 0.0, "tokens": 0.0, "llm_seconds": 0.0}
        for user in users:
            value = self.for_user(user, steps.get(user.user_id, []))
            if value is None:
                missing.append(user.user_id)
                continue
            found[user.user_id] = value
            cost = self.source.load(user.user_id).cost   # type: ignore[union-attr]
            for key in total:
                total[key] += float(cost.get(key, 0.0))
        if missing:
            raise MissingInputsError(
                f"{len(missing)} of {len(users)} sampled users have no LLM4SBR interests for "
                f"this model, prompt and encoder (e.g. {', '.join(missing[:5])}); build them "
                f"with {self.source.command}")
        self._cost = {key: value / max(1, len(users)) for key, value in total.items()}
        return found

    def cost(self) -> dict[str, float]:
        """LLM calls, tokens and seconds per sampled user of the interests :meth:`provide`
        read (the fusion bench's cost column)."""
        if self._cost is None:
            raise RuntimeError("cost() is known once provide() has read the interests")
        return dict(self._cost)
