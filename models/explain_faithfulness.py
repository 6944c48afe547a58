"""Faithfulness of explanations: deletion curves, fidelity and their per-user summaries.

:func:`deletion_curve` removes an item's paths cumulatively in explanation
order and in random orders; :func:`fidelity` is PyG's model fidelity on "is
the item in the top-k". Both score through the explainer (one batched,
cached forward pass per set of removals).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from models.explain_removal import NOTHING, REASONING_EDGES, Edge, Removal
from models.graph_data import reasoning_elements
from models.explain_schema import DeletionCurve, Faithfulness, Fidelity, ItemExplanation
from models.metrics import soft_rank, soft_rank_temperature, soft_ranks, target_ranks
from reasoning.graph_nodes import graph_edges, intents, node_chain

if TYPE_CHECKING:
    from models.explain import Explainer, ExplainPoint


def rank_rows(scores: Tensor, item: int) -> Tensor:
    """1-based rank of ``item`` in each row of ``scores [R, n + 1]``."""
    targets = torch.full((scores.shape[0],), int(item), dtype=torch.long)
    return target_ranks(scores, targets) + 1


def reasoning_edges(prefix: nx.DiGraph) -> list[Edge]:
    return [(e.source, e.target) for e in graph_edges(prefix, *REASONING_EDGES)]


def complement(prefix: nx.DiGraph, kept: Removal) -> Removal:
    """Everything of the reasoning *but* ``kept``: what to remove to keep only it.

    Paths removed as edges keep just those edges. Paths removed as chains and
    interests keep those chains (with their interests) and the kept interests
    with their own chain's items; every other chain and interest goes.
    """
    if kept.edges and not (kept.chains or kept.nodes):
        return Removal(edges=tuple(e for e in reasoning_edges(prefix) if e not in set(kept.edges)))
    chains, nodes = reasoning_elements(prefix)
    kept_nodes = set(kept.nodes)
    parents = {node_chain(prefix, n) for n in kept_nodes if n in prefix}
    chain_of = {i.id: i.chain for i in intents(prefix)}
    drop_chains = tuple(c for c in chains if c not in set(kept.chains) | parents)
    drop_nodes = tuple(n for n in nodes if n in chain_of
                       and n not in kept_nodes and chain_of[n] not in kept.chains)
    return Removal(chains=drop_chains, nodes=drop_nodes)


def deletion_curve(explainer: Explainer, point: ExplainPoint, item: int,
                   units: list[Removal]) -> DeletionCurve:
    """The item's rank as ``units`` are removed cumulatively, explanation order vs random.

    The random baseline is the mean curve over every order of the units when
    there are at most ``random_orders`` orders (the exact expectation, no
    sampling noise with 2 or 3 paths), else over ``random_orders`` seeded
    random permutations. Areas are compared exactly (integer rank sums), so
    equal curves are a tie, never a rounding accident. The same scores give the
    smooth-rank curves (``*_smooth``; see :func:`smooth_outcome`).
    """
    start = int(rank_rows(point.fused_scores[None], item)[0])
    m = len(units)
    exact = m >= 2 and math.factorial(m) <= explainer.random_orders
    if exact:
        randoms = [list(order) for order in itertools.permutations(range(m))]
    else:
        rng = np.random.default_rng([explainer.seed, point.user.user, point.step, item])
        randoms = [list(rng.permutation(m)) for _ in range(explainer.random_orders)]
    orders = [list(range(m))] + randoms
    removals = []
    for order in orders:
        acc = NOTHING
        for j in order:
            acc = acc.union(units[j])
            removals.append(acc)
    scores = explainer.scores(point, removals) if m else None
    ranks = (rank_rows(scores, item).view(len(orders), m) if scores is not None
             else torch.empty(len(orders), 0, dtype=torch.long))
    # One temperature, the unchanged list's, for every row (as the paths' effects).
    temperature = soft_rank_temperature(point.fused_scores)
    smooth = (soft_ranks(scores, item, temperature).view(len(orders), m) if scores is not None
              else torch.empty(len(orders), 0, dtype=torch.float64))
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
                         random_exact=exact, outcome=outcome,
                         start_smooth=soft_rank(point.fused_scores, item, temperature),
                         explanation_smooth=[float(r) for r in smooth[0]],
                         random_smooth=[float(r) for r in smooth[1:].mean(dim=0)])


#: Smooth-rank area differences within this (in places, per curve) are a tie: float noise.
SMOOTH_TIE = 1e-6


def smooth_area_difference(curve: DeletionCurve) -> float | None:
    """Explanation order's smooth-rank area minus the random orders' mean area; None for
    fewer than 2 paths or a curve saved without smooth ranks."""
    if curve.explanation_smooth is None or curve.random_smooth is None:
        return None
    if len(curve.explanation_smooth) < 2:
        return None
    return sum(curve.explanation_smooth) - sum(curve.random_smooth)


def smooth_outcome(differences: Sequence[float]) -> Literal["faster", "slower", "tied"]:
    """Whether explanation order pushes the smooth rank up faster than random, summed over
    the curves' :func:`smooth_area_difference` (one item's, or a user's items')."""
    total = sum(differences)
    tie = SMOOTH_TIE * max(1, len(differences))
    return "faster" if total > tie else "slower" if total < -tie else "tied"


def fidelity(explainer: Explainer, point: ExplainPoint, item: int,
             support: list[Removal]) -> Fidelity:
    """Whether the item stays in the top-k without its supporting paths (``plus``) and with
    only them (``minus``); see :class:`models.explain_schema.Fidelity`."""
    explanation = NOTHING
    for unit in support:
        explanation = explanation.union(unit)
    scores = explainer.scores(point, [explanation, complement(point.prefix, explanation)])
    ranks = rank_rows(torch.cat([point.fused_scores[None], scores]), item)
    in_top = [bool(r <= explainer.k) for r in ranks]
    return Fidelity(explanation_paths=len(support), in_top_k=in_top[0],
                    plus=float(in_top[1] != in_top[0]), minus=float(in_top[2] != in_top[0]))


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
