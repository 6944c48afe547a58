"""Explanations of fused recommendations, each backed by a measured counterfactual.

A pure library: the app (#5) and ``reasonrec explain`` only call it. For one
user at one point of their window (:meth:`Explainer.point`) it gives:

* :meth:`Explainer.top_k`: base and fused top-k side by side, with rank shifts;
* :meth:`Explainer.branch_effects`: each fused top-k item's score and rank
  change when E_ori or E_div is zeroed;
* :meth:`Explainer.counterfactual`: the fused top-k after removing any chains,
  nodes, reasoning edges or session items (what entered, what left);
* :meth:`Explainer.explain_item`: the reasoning paths from session items
  through chains and intents to an item (or to the graph's candidate nearest
  to it), each with the Δscore and Δrank *measured* by removing it, ranked by
  that effect (largest Δrank first, then largest score drop); the deletion
  curve (explanation order against every or seeded random orders, items whose
  rank does not react set apart) and fidelity+/- ("is the item still in the
  top-k", in the sense of ``torch_geometric.explain.metric.fidelity`` for
  model explanations);
* :meth:`Explainer.explain`: all of it as an :class:`Explanation`.

Every score here comes from the same path: the user's graph with the removal
applied (``models.graph_data.counterfactual_pair``), E_base recomputed from
the remaining session when session items go, the fused model's forward pass,
padding and (by default) already-seen items masked. Scoring is batched: all
the counterfactuals one explanation needs go through one forward pass.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from models.data import Dataset
from models.explain_schema import (EXPLANATION_SCHEMA, BranchEffects, Counterfactual, DeletionCurve,
                                   Effect, Explanation, ExplanationPath, Faithfulness, Fidelity,
                                   ItemExplanation, ItemRef, PathEdge, PathNode, PointInfo,
                                   Provenance, RankedItem, TopK)
from models.fusion.base import BASE
from models.fusion.llmrg import LLMRGFusion
from models.fusion.samples import UserGraph, Variant, base_vectors, place_graph
from models.graph_data import GraphPair, IntentIndex, counterfactual_pair, reasoning_elements
from models.graph_sources import GraphSource, graph_backend, source_label
from models.metrics import target_ranks
from models.protocol import pad_sequences
from models.recommenders import Recommender
from reasoning.graph import prefix_graph

REASONING_EDGES = ("chain", "diverge")
Edge = tuple[str, str]


@dataclass(frozen=True)
class Removal:
    """What to take out of a user's graph at a point (ids checked by :meth:`Explainer.removal`)."""

    chains: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    edges: tuple[Edge, ...] = ()

    def union(self, other: Removal) -> Removal:
        def merged(a: tuple, b: tuple) -> tuple:
            return tuple(dict.fromkeys((*a, *b)))
        return Removal(merged(self.chains, other.chains), merged(self.nodes, other.nodes),
                       merged(self.edges, other.edges))


NOTHING = Removal()


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


@dataclass
class _Path:
    id: str
    kind: Literal["divergent", "chain"]
    ends_at: Literal["item", "nearest_divergent", "chain_end"]
    chain: str | None
    nodes: list[str]
    edges: list[Edge]
    similarity: float | None = None


def _order(scores: Tensor, k: int) -> list[int]:
    """Top-k item indices; ties to the lower index, as :mod:`models.metrics` ranks."""
    finite = int(torch.isfinite(scores).sum())
    order = np.argsort(-scores.numpy(), kind="stable")[: min(k, finite)]
    return [int(i) for i in order]


def _ranks(scores: Tensor, item: int) -> Tensor:
    """1-based rank of ``item`` in each row of ``scores [R, n + 1]``."""
    targets = torch.full((scores.shape[0],), int(item), dtype=torch.long)
    return target_ranks(scores, targets) + 1


class Explainer:
    """Explains a reasoning-graph fused model's recommendations for any user with a graph.

    Args:
        dataset: the dataset (histories, catalogue).
        base: the frozen base model (E_base and the base top-k).
        strategy: the trained fused model, reading reasoning graph pairs.
        chosen: the variant it was trained as (graph options).
        intents: the intent rows ``strategy``'s table was trained with: a
            loaded run's own index (``FusionRun.intents``; ``FusionWorkspace.explainer``
            passes it). A graph's intent text outside it (a graph built live,
            after training) reads row 0, the zero "unknown" vector; the
            node still counts as an intent (kind embedding, edges, paths).
        source: where user graphs come from.
        max_len: longest base-model input.
        k: top-k size (lists, fidelity).
        exclude_seen: never rank items the user saw before the point.
        seed: seeds the random deletion orders.
        random_orders: random orders per deletion curve.
        max_paths: paths kept per explained item (strongest effect first).
        provenance: base/fusion run and source names for the output.
    """

    def __init__(self, dataset: Dataset, base: Recommender, strategy: LLMRGFusion,
                 chosen: Variant, intents: IntentIndex, source: GraphSource, max_len: int, *,
                 k: int = 10, exclude_seen: bool = True, seed: int = 0, random_orders: int = 10,
                 max_paths: int = 8, provenance: Mapping[str, str] | None = None) -> None:
        if chosen.options is None or not isinstance(strategy, LLMRGFusion):
            raise ValueError(f"explanations need a reasoning-graph fused model, not {chosen.name}")
        if k < 1 or random_orders < 1 or max_paths < 1:
            raise ValueError("k, random_orders and max_paths must be positive")
        self.dataset = dataset
        self.base = base
        self.strategy = strategy.eval()
        self.variant = chosen
        self.options = chosen.options
        self.intents = intents
        self.source = source
        self.max_len = max_len
        self.k = k
        self.exclude_seen = exclude_seen
        self.seed = seed
        self.random_orders = random_orders
        self.max_paths = max_paths
        self.provenance = dict(provenance or {})
        self.provenance.setdefault("graph_source", source_label(source))

    # ------------------------------------------------------------------ points
    def user_graph(self, user_id: str) -> UserGraph:
        """The user's graph, placed in their history; LookupError when the source has none."""
        self.dataset.user_index(user_id)          # KeyError naming an unknown user
        graph = self.source.get(str(user_id))
        if graph is None:
            raise LookupError(f"no reasoning graph for user {user_id} in "
                              f"{source_label(self.source)}; build it with `reasonrec "
                              f"build-graphs` (or use --graphs genre)")
        return place_graph(self.dataset, str(user_id), graph, self.intents)

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
        base_scores[0] = -torch.inf
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
            if not prefix.has_edge(u, v) or prefix.edges[u, v]["kind"] not in REASONING_EDGES:
                raise KeyError(f"no chain or diverge edge {u}->{v} in user "
                               f"{point.user.user_id}'s graph at step {point.step}")
            resolved_edges.append((u, v))
        item_nodes = []
        for item_id in items:
            index = self.dataset.catalogue.by_id(str(item_id)).index
            found = [n for n, a in prefix.nodes(data=True)
                     if a["kind"] == "session_item" and a.get("item_index") == index]
            if not found:
                raise KeyError(f"item {item_id} is not in user {point.user.user_id}'s window "
                               f"up to step {point.step}")
            item_nodes += found
        return Removal(tuple(dict.fromkeys(chains)), tuple(dict.fromkeys([*nodes, *item_nodes])),
                       tuple(dict.fromkeys(resolved_edges)))

    def pair(self, point: ExplainPoint, removal: Removal) -> GraphPair:
        """The encoder inputs of the point's graph with ``removal`` applied.

        Edges are taken out of the whole graph first; ``counterfactual_pair``
        then cuts the prefix and removes chains and nodes, and with them the
        intents and candidates nothing proposes any more.
        """
        graph = point.user.graph
        if removal.edges:
            graph = graph.copy()
            graph.remove_edges_from(removal.edges)
        return counterfactual_pair(graph, self.intents, point.step, chains=removal.chains,
                                   nodes=removal.nodes, options=self.options)

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
            pairs = [self.pair(point, r) for r in todo]
            keys = [_input_key(p) for p in pairs]
            fresh = {k: p for k, p in zip(keys, pairs) if k not in point._rows}
            if fresh:
                batch = list(fresh.values())
                e_base = self._e_base(point, batch)
                fused = self.strategy(e_base, self.strategy.pair_inputs(batch)).float()
                fused[:, 0] = -torch.inf
                point._rows.update(zip(fresh, fused))
            point._cache.update((r, point._rows[k]) for r, k in zip(todo, keys))
        rows = torch.stack([point._cache[r] for r in removals])
        return rows if raw else rows.masked_fill(point.masked, -torch.inf)

    def _e_base(self, point: ExplainPoint, pairs: Sequence[GraphPair]) -> Tensor:
        # Only a removed session item changes the base model's input; encode
        # each distinct remaining session once.
        unchanged = tuple(point.user.window[: point.step + 1])
        sessions = [tuple(p.session) for p in pairs]
        other = [s for s in dict.fromkeys(sessions) if s != unchanged]
        vectors = {unchanged: point.e_base[0]}
        if other:
            encoded = base_vectors(self.base, [point.user.base_input(point.step, s) for s in other],
                                   self.max_len)
            vectors.update(zip(other, encoded))
        return torch.stack([vectors[s] for s in sessions])

    # --------------------------------------------------------------- the views
    def item_ref(self, index: int) -> ItemRef:
        item = self.dataset.catalogue[int(index)]
        return ItemRef(index=item.index, item_id=item.item_id, title=item.display_name)

    def _ranked(self, scores: Tensor, other: Tensor, base_first: bool,
                base: Tensor) -> list[RankedItem]:
        """Top-k rows of ``scores``; ``other`` gives ``other_rank``, ``base`` (the unmodified
        base scores) gives ``base_rank``."""
        order = _order(scores, self.k)
        if not order:
            return []
        index = torch.tensor(order, dtype=torch.long)
        other_ranks = _item_ranks(other, index)
        base_ranks = _item_ranks(base, index)
        rows = []
        for rank, (item, other_rank, base_rank) in enumerate(
                zip(order, other_ranks, base_ranks), start=1):
            first, second = (rank, other_rank) if base_first else (other_rank, rank)
            rows.append(RankedItem(**self.item_ref(item).model_dump(), rank=rank,
                                   score=float(scores[item]), other_rank=other_rank,
                                   rank_shift=first - second, base_rank=base_rank))
        return rows

    def top_k(self, point: ExplainPoint) -> TopK:
        """Base and fused top-k; ``other_rank`` is the other model's rank of each item."""
        return TopK(base=self._ranked(point.base_scores, point.fused_scores, True,
                                      point.base_scores),
                    fused=self._ranked(point.fused_scores, point.base_scores, False,
                                       point.base_scores))

    def _effect(self, before: Tensor, after: Tensor, item: int) -> Effect:
        rank_before = int(_ranks(before[None], item)[0])
        rank_after = int(_ranks(after[None], item)[0])
        return Effect(delta_score=float(after[item] - before[item]),
                      delta_rank=rank_after - rank_before, rank_after=rank_after,
                      in_top_k_after=rank_after <= self.k)

    @torch.no_grad()
    def branch_effects(self, point: ExplainPoint) -> list[BranchEffects]:
        """Each fused top-k item's Δscore and Δrank with each graph branch's vector zeroed."""
        pair = self.pair(point, NOTHING)
        reps = self.strategy.representations(point.e_base, self.strategy.pair_inputs([pair]))
        zeroed = {}
        for branch in self.strategy.branches:
            if branch == BASE:
                continue
            scores = self.strategy.item_scores(self.strategy.fuse(reps, zero=[branch]))[0]
            zeroed[branch] = scores.float().masked_fill(point.masked, -torch.inf)
        rows = []
        for rank, item in enumerate(_order(point.fused_scores, self.k), start=1):
            rows.append(BranchEffects(
                **self.item_ref(item).model_dump(), rank=rank,
                score=float(point.fused_scores[item]),
                zeroed={b: self._effect(point.fused_scores, s, item) for b, s in zeroed.items()}))
        return rows

    def counterfactual(self, point: ExplainPoint, removal: Removal,
                       focus: int | None = None) -> Counterfactual:
        """The fused top-k after ``removal`` (from :meth:`removal`), and what entered or left.

        Args:
            point: the user and step.
            removal: what to take out.
            focus: optional catalogue index whose Δscore/Δrank to report.
        """
        after = self.scores(point, [removal])[0]
        before_top = _order(point.fused_scores, self.k)
        after_top = _order(after, self.k)
        # other_rank: the rank before the removal (unmodified fused ranking, all items);
        # base_rank: the unmodified base model's rank, for items entering from outside
        # both top-k lists.
        rows = self._ranked(after, point.fused_scores, base_first=False,
                            base=point.base_scores)
        for row in rows:   # here "other" is the rank before the removal
            row.rank_shift = row.other_rank - row.rank
        return Counterfactual(
            removed_chains=list(removal.chains), removed_nodes=list(removal.nodes),
            removed_edges=list(removal.edges), top_k=rows,
            entered=[self.item_ref(i) for i in after_top if i not in before_top],
            left=[self.item_ref(i) for i in before_top if i not in after_top],
            focus=None if focus is None else self._effect(point.fused_scores, after, focus))

    # ------------------------------------------------------------ explanations
    def paths(self, point: ExplainPoint, item: int) -> list[_Path]:
        """Candidate explanation paths of ``item`` at ``point`` (unmeasured, unordered)."""
        prefix = point.prefix
        ends = [n for n, a in prefix.nodes(data=True)
                if a["kind"] == "candidate_item" and a.get("item_index") == item]
        ends_at: Literal["item", "nearest_divergent"] = "item"
        similarity = None
        if not ends:
            ends, similarity = self._nearest_candidate(prefix, item)
            ends_at = "nearest_divergent"
        found: dict[frozenset[Edge], _Path] = {}
        for end in ends:
            for intent in sorted(prefix.predecessors(end)):
                if prefix.nodes[intent]["kind"] != "intent":
                    continue
                for anchor in sorted(prefix.predecessors(intent)):
                    chain = prefix.nodes[intent].get("chain") or prefix.edges[anchor, intent].get(
                        "chain")
                    nodes, edges = _chain_part(prefix, chain, anchor)
                    path = _Path(f"{chain}>{intent}>{end}", "divergent", ends_at, chain,
                                 [*nodes, intent, end], [*edges, (anchor, intent), (intent, end)],
                                 similarity)
                    found.setdefault(frozenset(path.edges), path)
        for chain in reasoning_elements(prefix)[0]:
            edges = [(u, v) for u, v, a in prefix.edges(data=True)
                     if a["kind"] == "chain" and a.get("chain") == chain]
            if edges:
                nodes = sorted({n for e in edges for n in e}, key=lambda n: prefix.nodes[n]["step"])
                found.setdefault(frozenset(edges),
                                 _Path(chain, "chain", "chain_end", chain, nodes, edges))
        return list(found.values())

    def _nearest_candidate(self, prefix: nx.DiGraph, item: int) -> tuple[list[str], float | None]:
        nodes = [(n, a["item_index"]) for n, a in prefix.nodes(data=True)
                 if a["kind"] == "candidate_item"]
        if not nodes:
            return [], None
        table = self.strategy.item_embedding.weight.detach()
        others = table[torch.tensor([i for _, i in nodes])]
        cosine = torch.nn.functional.cosine_similarity(others, table[item][None], dim=-1)
        best = int(cosine.argmax())
        return [nodes[best][0]], float(cosine[best])

    def _path_json(self, point: ExplainPoint, path: _Path, effect: Effect) -> ExplanationPath:
        prefix = point.prefix
        nodes = []
        for n in path.nodes:
            a = prefix.nodes[n]
            label = a.get("title") if a["kind"] != "intent" else a.get("intent")
            nodes.append(PathNode(id=n, kind=a["kind"], step=a["step"], label=str(label or n),
                                  item_index=a.get("item_index")))
        edges = []
        for u, v in path.edges:
            a = prefix.edges[u, v]
            edges.append(PathEdge(source=u, target=v, kind=a["kind"], reason=a.get("reason"),
                                  intent=a.get("intent"), score=a.get("score"),
                                  status=a.get("status"), weight=a.get("weight")))
        return ExplanationPath(id=path.id, kind=path.kind, ends_at=path.ends_at, chain=path.chain,
                               similarity=path.similarity, nodes=nodes, edges=edges, effect=effect)

    @torch.no_grad()
    def explain_item(self, point: ExplainPoint, item: int) -> ItemExplanation:
        """Paths to ``item`` with measured effects, its deletion curve and fidelity.

        Args:
            point: the user and step.
            item: catalogue index (any rankable item; usually a fused top-k item).

        Raises:
            ValueError: an item that is padding, unknown, or masked as already seen.
        """
        item = int(item)
        if not 1 <= item <= self.strategy.n_items or bool(point.masked[item]):
            raise ValueError(f"item {item} cannot be ranked here (unknown, or already seen by "
                             f"user {point.user.user_id})")
        full = point.fused_scores
        candidates = self.paths(point, item)
        single = [Removal(edges=tuple(p.edges)) for p in candidates]
        measured = self.scores(point, single) if single else torch.empty(0)
        effects = [self._effect(full, row, item) for row in measured]
        # Strongest first by the measured effect on what the user sees, the rank: the
        # path whose removal pushes the item down furthest; among equal rank changes,
        # the larger score drop. (The item's score alone is shift-invariant noise to
        # the ranking: a removal can lower it and still lift the item, when its
        # competitors drop more; such a path does not support the item.)
        ranked = sorted(zip(candidates, effects, single),
                        key=lambda t: (-t[1].delta_rank, t[1].delta_score, t[0].id))
        kept = ranked[: self.max_paths]
        deletion = self._deletion(point, item, [r for _, _, r in kept])
        fidelity = self._fidelity(point, item, [r for _, e, r in kept if _supports(e)])
        return ItemExplanation(**self.item_ref(item).model_dump(),
                               rank=int(_ranks(full[None], item)[0]), score=float(full[item]),
                               paths=[self._path_json(point, p, e) for p, e, _ in kept],
                               deletion=deletion, fidelity=fidelity)

    def _deletion(self, point: ExplainPoint, item: int, units: list[Removal]) -> DeletionCurve:
        """The item's rank as ``units`` are removed cumulatively, explanation order vs random.

        The random baseline is the mean curve over every order of the units when
        there are at most ``random_orders`` orders (the exact expectation, no
        sampling noise with 2 or 3 paths), else over ``random_orders`` seeded
        random permutations. Areas are compared exactly (integer rank sums), so
        equal curves are a tie, never a rounding accident.
        """
        start = int(_ranks(point.fused_scores[None], item)[0])
        m = len(units)
        exact = m >= 2 and math.factorial(m) <= self.random_orders
        if exact:
            randoms = [list(order) for order in itertools.permutations(range(m))]
        else:
            rng = np.random.default_rng([self.seed, point.user.user, point.step, item])
            randoms = [list(rng.permutation(m)) for _ in range(self.random_orders)]
        orders = [list(range(m))] + randoms
        removals = []
        for order in orders:
            acc = NOTHING
            for j in order:
                acc = acc.union(units[j])
                removals.append(acc)
        ranks = (_ranks(self.scores(point, removals), item).view(len(orders), m)
                 if m else torch.empty(len(orders), 0, dtype=torch.long))
        explanation, random = ranks[0], ranks[1:].double().mean(dim=0)
        sum_e, sum_r = int(explanation.sum()), int(ranks[1:].sum())   # sum_r over all orders
        outcome: Literal["faster", "slower", "tied", "no_reaction", "too_few_paths"]
        if m < 2:
            outcome = "too_few_paths"
        elif not bool((ranks != start).any()):
            outcome = "no_reaction"
        else:
            diff = sum_e * len(randoms) - sum_r
            outcome = "faster" if diff > 0 else "slower" if diff < 0 else "tied"
        return DeletionCurve(start_rank=start, explanation_ranks=[int(r) for r in explanation],
                             random_ranks=[float(r) for r in random],
                             random_orders=len(randoms), area_explanation=float(sum_e),
                             area_random=sum_r / len(randoms) if randoms else 0.0,
                             faster=None if m < 2 else outcome == "faster",
                             random_exact=exact, outcome=outcome)

    def _fidelity(self, point: ExplainPoint, item: int, support: list[Removal]) -> Fidelity:
        explanation = NOTHING
        for unit in support:
            explanation = explanation.union(unit)
        keep = set(explanation.edges)
        others = tuple(e for e in _reasoning_edges(point.prefix) if e not in keep)
        scores = self.scores(point, [explanation, Removal(edges=others)])
        ranks = _ranks(torch.cat([point.fused_scores[None], scores]), item)
        in_top = [bool(r <= self.k) for r in ranks]
        return Fidelity(explanation_paths=len(support), in_top_k=in_top[0],
                        plus=float(in_top[1] != in_top[0]), minus=float(in_top[2] != in_top[0]))

    def explain(self, user: str | UserGraph | ExplainPoint, step: int | None = None,
                items: Iterable[int] | None = None) -> Explanation:
        """Everything for one user at one point; ``items`` defaults to the fused top-k.

        ``user`` is a user id (graph from the source), a placed graph, e.g. one
        the app just built (``models.fusion.samples.place_graph``), or a point
        already scored by :meth:`point` (``step`` is then ignored).
        """
        started = time.perf_counter()
        point = (user if isinstance(user, ExplainPoint)
                 else self.point(user if isinstance(user, UserGraph) else str(user), step))
        user_id = point.user.user_id
        chosen = list(items) if items is not None else _order(point.fused_scores, self.k)
        explained = [self.explain_item(point, i) for i in chosen]
        target = point.target
        # A re-watched target is hidden by the seen-mask: rank it among all items then.
        seen = bool(point.masked[target])
        base, fused = ((point.base_raw, point.fused_raw) if seen
                       else (point.base_scores, point.fused_scores))
        info = PointInfo(step=point.step, steps=point.user.steps, role=point.user.role(point.step),
                         history_length=point.user.offset + point.step + 1,
                         target=self.item_ref(target),
                         target_rank_base=int(_ranks(base[None], target)[0]),
                         target_rank_fused=int(_ranks(fused[None], target)[0]))
        provenance = Provenance(
            base_model=self.provenance.get("base_model", self.base.name),
            base_run=self.provenance.get("base_run", ""),
            fusion_variant=self.variant.name, fusion_run=self.provenance.get("fusion_run", ""),
            graph_source=self.provenance["graph_source"],
            graph_backend=graph_backend(point.user.graph))
        return Explanation(schema=EXPLANATION_SCHEMA, dataset=self.dataset.name,
                           user=str(user_id), k=self.k, exclude_seen=self.exclude_seen,
                           point=info, provenance=provenance,
                           top_k=self.top_k(point), branch_effects=self.branch_effects(point),
                           items=explained, faithfulness=summarize(explained),
                           seconds=time.perf_counter() - started)


_INPUT_FIELDS = ("x", "intent", "node_kind", "edge_index", "edge_type", "edge_weight",
                 "alias_inputs", "last")


def _input_key(pair: GraphPair) -> bytes:
    """Bytes that are equal exactly when two pairs give the model the same input."""
    parts = [str(len(pair.session)).encode(), np.asarray(pair.session, dtype=np.int64).tobytes()]
    for data in (pair.rea, pair.div):
        for name in _INPUT_FIELDS:
            tensor = data[name]
            parts += [str(tuple(tensor.shape)).encode(), tensor.numpy().tobytes()]
    return b"|".join(parts)


def _chain_part(prefix: nx.DiGraph, chain: str | None, anchor: str) -> tuple[list[str], list[Edge]]:
    """The chain's session nodes up to ``anchor`` (in step order) and its edges among them."""
    limit = prefix.nodes[anchor]["step"]
    edges = [(u, v) for u, v, a in prefix.edges(data=True)
             if a["kind"] == "chain" and chain is not None and a.get("chain") == chain
             and prefix.nodes[v]["step"] <= limit]
    nodes = {n for e in edges for n in e} | {anchor}
    return sorted(nodes, key=lambda n: prefix.nodes[n]["step"]), edges


def _reasoning_edges(prefix: nx.DiGraph) -> list[Edge]:
    return [(u, v) for u, v, a in prefix.edges(data=True) if a["kind"] in REASONING_EDGES]


def summarize(items: Sequence[ItemExplanation]) -> Faithfulness:
    """One user's faithfulness over explained items (deletion curves, fidelity).

    Deletion curves are compared only where the item's rank reacts to its
    paths; items with fewer than 2 paths or no reaction are counted apart.
    """
    outcomes = [_outcome(i.deletion) for i in items]
    reacting = [i for i, o in zip(items, outcomes) if o in REACTING]
    plus = [i.fidelity.plus for i in items]
    minus = [i.fidelity.minus for i in items]
    return Faithfulness(
        items_compared=sum(o != "too_few_paths" for o in outcomes),
        share_faster=(sum(o == "faster" for o in outcomes) / len(reacting)) if reacting
        else None,
        user_faster=explanation_order_faster(reacting) if reacting else None,
        fidelity_plus=float(np.mean(plus)) if plus else None,
        fidelity_minus=float(np.mean(minus)) if minus else None,
        items_reacting=len(reacting), items_no_reaction=outcomes.count("no_reaction"),
        items_too_few_paths=outcomes.count("too_few_paths"), items_tied=outcomes.count("tied"))


#: Deletion outcomes where the comparison with random orders is defined.
REACTING = ("faster", "slower", "tied")


def _outcome(curve: DeletionCurve) -> str:
    """``curve.outcome``, derived for curves saved before it existed."""
    if curve.outcome is not None:
        return curve.outcome
    if curve.faster is None:
        return "too_few_paths"
    moved = any(r != curve.start_rank for r in (*curve.explanation_ranks, *curve.random_ranks))
    if not moved:
        return "no_reaction"
    if curve.area_explanation == curve.area_random:
        return "tied"
    return "faster" if curve.area_explanation > curve.area_random else "slower"


def _area_difference(items: Sequence[ItemExplanation]) -> float:
    """Summed over ``items``: explanation order's area minus the random orders' mean area."""
    return sum(i.deletion.area_explanation - i.deletion.area_random for i in items)


def explanation_order_faster(items: Sequence[ItemExplanation]) -> bool:
    """Summed over ``items``, explanation order's area exceeds random's."""
    return _area_difference(items) > 1e-9


def user_outcome(summary: Faithfulness, items: Sequence[ItemExplanation]) -> str:
    """``faster``/``slower``/``tied`` over the user's reacting items, or why there are none
    (``no_reaction``: some item has 2+ paths but none reacts; ``too_few_paths``)."""
    reacting = [i for i in items if _outcome(i.deletion) in REACTING]
    if reacting:
        diff = _area_difference(reacting)
        return "faster" if diff > 1e-9 else "slower" if diff < -1e-9 else "tied"
    return "no_reaction" if summary.items_no_reaction else "too_few_paths"


def _supports(effect: Effect) -> bool:
    """A path supports its item when removing it pushes the item down (rank first, then
    score at an equal rank): the paths fidelity treats as the explanation."""
    return effect.delta_rank > 0 or (effect.delta_rank == 0 and effect.delta_score < 0)


def _item_ranks(scores: Tensor, items: Tensor) -> list[int]:
    """1-based rank of each of ``items`` in the one row ``scores [n + 1]``."""
    return [int(r) + 1 for r in target_ranks(scores[None].expand(len(items), -1), items)]
