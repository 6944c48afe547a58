"""Counterfactual scoring for explanations: a user's point and the fused scores after removals.

:class:`CounterfactualScorer` is the part of ``models.explain.Explainer``
that turns "this user at this step, without these chains, nodes, reasoning
edges or session items" into fused scores: the user's graph with the removal
applied by the fused model's variant (the small
``models.fusion.strategy.Counterfactuals`` protocol: any registered strategy),
E_base recomputed from the remaining session when session items go, the fused
model's forward pass, padding and (by default) already-seen items masked. All
removals one explanation needs go through one batched forward pass, cached per
point.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from models.data import Dataset
from models.explain_removal import NOTHING, REASONING_EDGES, Removal
from models.fusion.base import FusionStrategy
from models.fusion.samples import UserGraph, base_vectors, place_graph
from models.fusion.strategy import Counterfactuals, ModelInput, Need
from models.graph_data import IntentIndex, reasoning_elements
from models.graph_sources import GraphSource, source_label
from models.metrics import mask_padding
from models.protocol import pad_sequences
from models.recommenders import Recommender
from reasoning.graph import prefix_graph
from reasoning.graph_nodes import edge_kind, session_items


@dataclass
class ExplainPoint:
    """One user at one window step, with everything scored once.

    Attributes:
        user: the placed graph.
        step: window step of the prefix graph (its target is the next item).
        prefix: the prefix graph (ids valid for removals).
        masked: ``[n_items + 1]`` bool, items never ranked (padding; seen items
            when ``exclude_seen``).
        e_base: ``[1, d_base]`` E_base of the unchanged session.
        base_raw, fused_raw: ``[n_items + 1]`` scores with only padding at ``-inf``.
    """

    user: UserGraph
    step: int
    prefix: nx.DiGraph
    masked: Tensor
    e_base: Tensor
    base_raw: Tensor
    fused_raw: Tensor = field(default_factory=lambda: torch.empty(0))
    _cache: dict[Removal, Tensor] = field(default_factory=dict, repr=False)
    _rows: dict[bytes, Tensor] = field(default_factory=dict, repr=False)
    _inputs: dict[tuple[frozenset, ...], ModelInput] = field(default_factory=dict, repr=False)

    @property
    def base_scores(self) -> Tensor:
        """``[n_items + 1]`` base scores, masked items at ``-inf``."""
        return self.base_raw.masked_fill(self.masked, -torch.inf)

    @property
    def fused_scores(self) -> Tensor:
        """``[n_items + 1]`` fused scores, masked items at ``-inf``."""
        return self.fused_raw.masked_fill(self.masked, -torch.inf)

    @property
    def target(self) -> int:
        return self.user.target(self.step)





class CounterfactualScorer:
    """Points and counterfactual scores; ``models.explain.Explainer`` sets the attributes."""

    dataset: Dataset
    base: Recommender
    strategy: FusionStrategy
    variant: Counterfactuals
    intents: IntentIndex
    source: GraphSource
    max_len: int
    exclude_seen: bool
    #: provided inputs by user token (``FusionWorkspace.extras``), for strategies reading them
    extras: Mapping[str, Mapping[Need, Any]]

    # ------------------------------------------------------------------ points
    def user_graph(self, user_id: str) -> UserGraph:
        """The user's graph, placed in their history; LookupError when the source has none."""
        self.dataset.user_index(user_id)          # KeyError naming an unknown user
        graph = self.source.get(str(user_id))
        if graph is None:
            raise LookupError(f"no reasoning graph for user {user_id} in "
                              f"{source_label(self.source)}; build it with `reasonrec "
                              f"build-graphs` (or use --graphs genre)")
        placed = place_graph(self.dataset, str(user_id), graph, self.intents)
        # Provided inputs (LM scores, LLM interests) of the workspace's sample, if any.
        return (replace(placed, extras=self.extras.get(str(user_id), {})) if self.extras
                else placed)

    @torch.no_grad()
    def point(self, user: str | UserGraph, step: int | None = None) -> ExplainPoint:
        """The user at window ``step`` (default: the last, predicting the test target).

        Raises:
            ValueError: a step outside the graph's window.
        """
        user = user if isinstance(user, UserGraph) else self.user_graph(user)
        step = user.steps - 1 if step is None else int(step)
        user.check_step(step)
        history = user.base_input(step)
        masked = torch.zeros(self.strategy.n_items + 1, dtype=torch.bool)
        masked[0] = True
        if self.exclude_seen:
            masked[torch.as_tensor(np.unique(history), dtype=torch.long)] = True
        items, lengths = pad_sequences([history], self.max_len)
        base_scores = self.base.score(items, lengths)[0].float().cpu()
        mask_padding(base_scores)
        point = ExplainPoint(user, step, prefix_graph(user.graph, step), masked,
                             base_vectors(self.base, [history], self.max_len), base_scores)
        point.fused_raw = self.scores(point, [NOTHING], raw=True)[0]
        return point

    # ----------------------------------------------------------------- scoring
    def removal(self, point: ExplainPoint, *, chains: Collection[str] = (),
                nodes: Collection[str] = (), edges: Collection[Sequence[str]] = (),
                items: Collection[str] = ()) -> Removal:
        """Check ids against the point's prefix graph and resolve ``items``.

        Args:
            chains: chain ids (``c1``...).
            nodes: node ids of any kind (``s3``, ``dc1.2``, ``c42``).
            edges: ``(source, target)`` chain or diverge edges.
            items: dataset item ids of session items (every window position
                holding the item up to the point is removed).

        Raises:
            KeyError: an id not in the prefix graph, or an edge that is not a
                reasoning edge (the window order goes with its session items).
        """
        prefix = point.prefix
        known_chains, _ = reasoning_elements(prefix)
        bad = [c for c in chains if c not in known_chains] + [n for n in nodes if n not in prefix]
        if bad:
            raise KeyError(f"not in user {point.user.user_id}'s graph at step {point.step}: "
                           f"{', '.join(map(str, bad))}")
        resolved_edges = []
        for edge in edges:
            if len(edge) != 2:
                raise KeyError(f"an edge is a (source, target) pair, got {edge!r}")
            u, v = str(edge[0]), str(edge[1])
            if not prefix.has_edge(u, v) or edge_kind(prefix, u, v) not in REASONING_EDGES:
                raise KeyError(f"no chain or diverge edge {u}->{v} in user "
                               f"{point.user.user_id}'s graph at step {point.step}")
            resolved_edges.append((u, v))
        item_nodes = []
        for item_id in items:
            index = self.dataset.catalogue.by_id(str(item_id)).index
            found = [i.id for i in session_items(prefix) if i.item_index == index]
            if not found:
                raise KeyError(f"item {item_id} is not in user {point.user.user_id}'s window "
                               f"up to step {point.step}")
            item_nodes += found
        return Removal(tuple(dict.fromkeys(chains)), tuple(dict.fromkeys([*nodes, *item_nodes])),
                       tuple(dict.fromkeys(resolved_edges)))

    def model_input(self, point: ExplainPoint, removal: Removal) -> ModelInput:
        """The model's inputs at the point with ``removal`` applied (its variant says how)."""
        if not self.variant.removable:
            # Nothing it reads can be removed: every removal leaves the point's own inputs
            # (which may be provided ones, e.g. stored LM scores, that no graph holds).
            return ModelInput(tuple(point.user.window[: point.step + 1]),
                              self.variant.sample_inputs(point.user, point.step))
        # The same removals in another order (a deletion curve's random orders reach the
        # same sets) give the same graph: each set is built once per point.
        key = (frozenset(removal.chains), frozenset(removal.nodes), frozenset(removal.edges))
        found = point._inputs.get(key)
        if found is None:
            found = point._inputs[key] = self.variant.counterfactual_input(
                point.user.graph, self.intents, point.step, removal)
        return found

    @torch.no_grad()
    def scores(self, point: ExplainPoint, removals: Sequence[Removal],
               raw: bool = False) -> Tensor:
        """Fused scores after each removal, in one batched forward pass (cached per removal).

        Args:
            point: the user and step.
            removals: one score row each.
            raw: leave seen items unmasked (padding is always ``-inf``).

        Shapes:
            returns ``[len(removals), n_items + 1]``; masked items are ``-inf``.
        """
        todo = list(dict.fromkeys(r for r in removals if r not in point._cache))
        if todo:
            # Removals that leave the encoder inputs unchanged (a rejected
            # chain's edges, which G_rea never had) must score *exactly* as
            # before, not up to the rounding of a differently sized batch: each
            # distinct input is scored once and shared.
            # (Removing what a strategy does not read leaves its input unchanged too.)
            inputs = [self.model_input(point, r) for r in todo]
            keys = [i.key() for i in inputs]
            fresh = {k: i for k, i in zip(keys, inputs) if k not in point._rows}
            if fresh:
                batch = list(fresh.values())
                e_base = self._e_base(point, batch)
                fused = self.strategy(e_base,
                                      self.strategy.collate([i.inputs for i in batch])).float()
                mask_padding(fused)
                point._rows.update(zip(fresh, fused))
            point._cache.update((r, point._rows[k]) for r, k in zip(todo, keys))
        rows = torch.stack([point._cache[r] for r in removals])
        return rows if raw else rows.masked_fill(point.masked, -torch.inf)

    def _e_base(self, point: ExplainPoint, inputs: Sequence[ModelInput]) -> Tensor:
        # Only a removed session item changes the base model's input; encode
        # each distinct remaining session once.
        unchanged = tuple(point.user.window[: point.step + 1])
        sessions = [tuple(i.session) for i in inputs]
        other = [s for s in dict.fromkeys(sessions) if s != unchanged]
        vectors = {unchanged: point.e_base[0]}
        if other:
            encoded = base_vectors(self.base, [point.user.base_input(point.step, s) for s in other],
                                   self.max_len)
            vectors.update(zip(other, encoded))
        return torch.stack([vectors[s] for s in sessions])
