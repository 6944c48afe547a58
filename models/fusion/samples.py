"""Fused training and evaluation cases from the ``loo`` protocol and one graph per user.

A user's reasoning graph covers the ``L`` window items before their test
target, every node stamped with its window step. The prefix graph at step
``t`` (window items ``0..t``) therefore predicts window item ``t + 1``, and the
whole graph predicts the test target, so one graph per user serves:

* **test**: step ``L - 1``, the ``loo`` test target (input ``h[:-1]``);
* **valid**: step ``L - 2``, the ``loo`` validation target (input ``h[:-2]``);
* **train**: steps ``L - 3`` down to ``L - 2 - train_steps``, the user's last
  training targets.

E_base at each point is the frozen base model's encoding of the user's whole
history before the target (cut to ``max_len``), so base and fused rank the
same targets from the same inputs as :mod:`models.evaluation` does.

Note on training targets: the base model was trained on them, so E_base is
more confident there than at the validation and test targets; early stopping
on validation NDCG@10 (with the base model itself as the epoch-0 candidate)
guards against the fused layer learning to over-trust it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from models.data import Dataset
from models.explain_removal import Removal
from models.fusion import strategy_spec
from models.fusion.registry import VARIANTS as REGISTERED_VARIANTS
from models.fusion.registry import StrategyKind, VariantSpec
from models.fusion.strategy import (InputNote, ModelInput, Need, RemovableKind,
                                    StrategyContext, StrategySpec)
from models.fusion.train import FusionSample
from models.graph_data import IntentIndex
from models.graph_sources import GraphSource, source_label
from models.protocol import LeaveOneOut, pad_sequences
from models.recommenders import Recommender

Role = Literal["train", "valid", "test"]
ROLES: tuple[Role, ...] = ("train", "valid", "test")


class MissingGraphsError(LookupError):
    """Sampled users without a reasoning graph; the message says how to build them."""


@dataclass(frozen=True)
class Variant:
    """A fused model of the bench, bound to its strategy: a registry row with typed options.

    Implements :class:`models.fusion.strategy.Counterfactuals`, the protocol the
    explainer reads.

    Attributes:
        name: the row name (``llmrg``, ``llmrg-no-div``...).
        strategy: the registry kind.
        options: the strategy's typed options (``GraphOptions`` for LLMRG; None
            for the control).
        description: the bench row's label.
    """

    name: str
    strategy: StrategyKind
    options: Any
    description: str

    @property
    def spec(self) -> StrategySpec:
        return strategy_spec(self.strategy)

    @property
    def needs(self) -> frozenset[Need]:
        return self.spec.needs

    @property
    def removable(self) -> frozenset[RemovableKind]:
        return self.spec.removable

    def sample_inputs(self, user: UserGraph, step: int) -> dict[str, Any]:
        """Per-sample strategy inputs at ``step`` (for ``FusionStrategy.collate``)."""
        return self.spec.sample_inputs(user, step, self.options)

    def model_kwargs(self, context: StrategyContext) -> dict[str, Any]:
        """The strategy's constructor arguments (see ``StrategySpec.model_kwargs``)."""
        return self.spec.model_kwargs(context, self.options)

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal) -> ModelInput:
        """The inputs at ``step`` of ``graph`` with ``removal`` applied."""
        return self.spec.counterfactual_input(graph, intents, step, removal, self.options)

    def describe_inputs(self, user: UserGraph, step: int) -> list[InputNote]:
        """The provided inputs the model reads at ``step`` (for explanations)."""
        return self.spec.describe_inputs(user, step, self.options)


def bind(row: VariantSpec) -> Variant:
    """A registry row with its options parsed by its strategy (ValueError names the row)."""
    try:
        options = strategy_spec(row.strategy).parse_options(dict(row.options))
    except ValueError as exc:
        raise ValueError(f"fusion variant {row.name!r}: {exc}") from None
    return Variant(row.name, row.strategy, options, row.description)


BASE_ROW = "base"
VARIANTS: dict[str, Variant] = {row.name: bind(row) for row in REGISTERED_VARIANTS}


def variant(name: str) -> Variant:
    """The variant called ``name``; ValueError lists the known ones."""
    if name not in VARIANTS:
        raise ValueError(f"unknown fusion variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


@dataclass
class UserGraph:
    """A user's reasoning graph placed in their history.

    Attributes:
        user: dense user index.
        user_id: the dataset's user token.
        history: the user's whole history (catalogue indices, time order).
        graph: the reasoning graph of the window before the test target.
        offset: history position of window step 0.
        intents: intent-table rows for the graph's intent nodes.
        extras: inputs from the workspace's providers (``models.fusion.inputs``),
            by need; only those the variant being built reads.
    """

    user: int
    user_id: str
    history: np.ndarray
    graph: nx.DiGraph
    offset: int
    intents: IntentIndex
    extras: Mapping[Need, Any] = field(default_factory=dict, repr=False)

    @property
    def window(self) -> list[int]:
        return [int(i) for i in self.graph.graph["window"]]

    @property
    def steps(self) -> int:
        """Window length ``L``."""
        return len(self.graph.graph["window"])

    def target(self, step: int) -> int:
        """The item the prefix graph at ``step`` predicts."""
        self.check_step(step)
        return int(self.history[self.offset + step + 1])

    def check_step(self, step: int) -> None:
        if not 0 <= step < self.steps:
            raise ValueError(f"step {step} is outside user {self.user_id}'s graph window "
                             f"(steps 0..{self.steps - 1})")

    def role(self, step: int) -> Role:
        """test, valid or train: what the target at ``step`` is in the ``loo`` split."""
        self.check_step(step)
        return "test" if step == self.steps - 1 else "valid" if step == self.steps - 2 else "train"

    def base_input(self, step: int, session: Sequence[int] | None = None) -> np.ndarray:
        """History fed to the base model at ``step``: everything before the window, then the
        window prefix, or ``session`` (the remaining window items after removals) instead."""
        self.check_step(step)
        window = self.window[: step + 1] if session is None else [int(i) for i in session]
        return np.concatenate([self.history[: self.offset],
                               np.asarray(window, dtype=self.history.dtype)])

    def points(self, train_steps: int) -> list[Point]:
        """The test, valid and last ``train_steps`` training points, in that order."""
        last = self.steps - 1
        steps = [last, last - 1] + list(range(last - 2, max(-1, last - 2 - train_steps), -1))
        return [Point(self, s, self.role(s), self.target(s)) for s in steps if s >= 0]


@dataclass(frozen=True)
class Point:
    """One prediction case: the prefix graph of ``user`` at ``step`` predicts ``target``."""

    user: UserGraph = field(repr=False)
    step: int
    role: Role
    target: int


def place_graph(dataset: Dataset, user_id: str, graph: nx.DiGraph,
                intents: IntentIndex) -> UserGraph:
    """Check that ``graph`` is this user's window before the test target and place it.

    ``intents`` must be the rows of the model that will read the graph (a run's
    own index, e.g. ``Explainer.intents``): texts outside it read row 0.

    Raises:
        ValueError: the graph belongs to another dataset or user, or its window
            is not the items right before the user's test target (a graph built
            under another protocol or from other data).
    """
    meta = graph.graph
    if meta.get("dataset") != dataset.name or str(meta.get("user")) != str(user_id):
        raise ValueError(f"graph of {meta.get('dataset')!r} user {meta.get('user')!r} given for "
                         f"{dataset.name!r} user {user_id!r}")
    user = dataset.user_index(user_id)
    history = dataset.histories[user]
    window = [int(i) for i in meta["window"]]
    end = len(history) - 1
    position = meta.get("target_position")
    if position is not None and int(position) != end:
        raise ValueError(f"user {user_id}'s graph is the window before history position "
                         f"{position}, not before their test target ({end}); fusion reads "
                         f"graphs built for the test target (`reasonrec build-graphs`)")
    offset = end - len(window)
    if len(window) < 2 or offset < 0 or history[offset:end].tolist() != window:
        raise ValueError(f"user {user_id}'s graph window {window[:5]}... is not the "
                         f"{len(window)} items before their test target; rebuild the graph "
                         f"for this dataset (window of at least 2 items)")
    return UserGraph(user, str(user_id), history, graph, offset, intents)


def sample_users(split: LeaveOneOut, n: int, seed: int) -> np.ndarray:
    """A seeded sample of ``n`` evaluated users (dense indices, sorted); all when fewer.

    The sample depends only on the evaluated users and the seed, so every run
    and every fused model of the bench sees the same users.
    """
    users = np.asarray(split.test.users)
    if n >= len(users):
        return np.sort(users)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(users, size=n, replace=False))


def load_user_graphs(dataset: Dataset, users: Sequence[int] | np.ndarray, source: GraphSource,
                     intents: IntentIndex) -> list[UserGraph]:
    """Every sampled user's graph, placed; MissingGraphsError lists users without one."""
    placed, missing = [], []
    for user in users:
        user_id = dataset.user_ids[int(user)]
        graph = source.get(user_id)
        if graph is None:
            missing.append(user_id)
        else:
            placed.append(place_graph(dataset, user_id, graph, intents))
    if missing:
        raise MissingGraphsError(
            f"{len(missing)} of {len(users)} sampled users have no reasoning graph in "
            f"{source_label(source)} (e.g. {', '.join(missing[:5])}); build them with "
            f"`reasonrec build-graphs`, or use `--graphs genre` for the LLM-free stand-in")
    return placed


@torch.no_grad()
def base_vectors(base: Recommender, inputs: Sequence[np.ndarray], max_len: int,
                 batch_size: int = 512) -> Tensor:
    """E_base of each input history (frozen base model, eval mode, on the CPU).

    Shapes:
        returns ``[len(inputs), d_base]``.
    """
    if isinstance(base, torch.nn.Module):
        base.eval()
    device = next(base.parameters()).device if isinstance(base, torch.nn.Module) else "cpu"
    rows = []
    for start in range(0, len(inputs), batch_size):
        items, lengths = pad_sequences(list(inputs[start:start + batch_size]), max_len)
        vectors = base.encode(items.to(device), lengths.to(device))
        if vectors is None:
            raise ValueError(f"base model {base.name!r} has no session representation; "
                             f"fusion needs a neural base model")
        rows.append(vectors.float().cpu())
    if not rows:
        raise ValueError("no inputs to encode")
    return torch.cat(rows)


def base_item_table(base: Recommender) -> Tensor:
    """The base model's output item table ``[n_items + 1, d]`` (detached, CPU)."""
    table = getattr(base, "item_embeddings", None)
    if table is None:
        raise ValueError(f"base model {base.name!r} has no item embeddings")
    with torch.no_grad():
        return table().detach().float().cpu().clone()


@dataclass
class PointSet:
    """All points of the sampled users with their E_base, grouped by role.

    Attributes:
        users: the placed user graphs, in sample order.
        points: every point; ``e_base[i]`` belongs to ``points[i]``.
        e_base: ``[len(points), d_base]``.
    """

    users: list[UserGraph]
    points: list[Point]
    e_base: Tensor

    def indices(self, role: Role) -> list[int]:
        return [i for i, p in enumerate(self.points) if p.role == role]

    def targets(self, role: Role) -> Tensor:
        return torch.tensor([self.points[i].target for i in self.indices(role)], dtype=torch.long)


def build_points(users: Sequence[UserGraph], base: Recommender, max_len: int,
                 train_steps: int) -> PointSet:
    """Points of every user (test, valid, training) and their E_base."""
    points = [p for u in users for p in u.points(train_steps)]
    inputs = [p.user.base_input(p.step) for p in points]
    return PointSet(list(users), points, base_vectors(base, inputs, max_len))


def fusion_samples(points: PointSet, chosen: Variant, role: Role | Collection[Role],
                   extras: Mapping[str, Mapping[Need, Any]] | None = None) -> list[FusionSample]:
    """Training or evaluation samples of ``chosen`` for the points of ``role``.

    ``extras`` are the provided inputs by user token (``UserGraph.extras``).
    """
    roles = {role} if isinstance(role, str) else set(role)
    users: dict[str, UserGraph] = {}

    def with_extras(user: UserGraph) -> UserGraph:
        if not extras:
            return user
        if user.user_id not in users:
            users[user.user_id] = replace(user, extras=extras.get(user.user_id, {}))
        return users[user.user_id]

    return [FusionSample(e_base=points.e_base[i], target=p.target,
                         inputs=chosen.sample_inputs(with_extras(p.user), p.step))
            for i, p in enumerate(points.points) if p.role in roles]


def describe_points(points: PointSet) -> Mapping[str, int]:
    """How many points of each role (for reports)."""
    return {role: len(points.indices(role)) for role in ROLES}
