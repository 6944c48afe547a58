"""``reasonrec bench explanations``: do the fused top-k explanations reach their items? (#18)

Over the fused models' user sample (the shipped graphs and fused run by
default), for every fused top-k item at the user's last window step:

* **reached**: a path of the reasoning the model reads (not a rejected
  chain's) reaches the item through a fact from the data
  (``models.explain_paths.reaches``);
* **evidence and effect**: of the reached items, those where such a path
  carries at least one numeric fact (a co-watch count, an encoder similarity
  or the builder's match; shared genres alone are not numeric) *and* has a
  nonzero measured effect (removing it changes the item's score or rank);
* **reliance**: the item's rank and smooth rank with all reasoning removed,
  the most any path's removal can do;
* **faithfulness**: the deletion-curve comparison of ``bench fusion``
  (``models.bench_fusion.faithfulness_of``) on the same explanations, on
  exact ranks (users with an item whose rank reacts) and on smooth ranks
  (users with an item of 2+ paths).

Also reported, so the headline shares are not read for more than they are:
reached through a co-watch count, items whose strongest reaching path
*supports* them (its removal pushes them down), and the sentences of the first
users' top items as examples. Torch runs on one thread, as in ``bench fusion``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from models.bench_fusion import AIM_FASTER_SHARE, faithfulness_of
from models.explain import Explainer
from models.explain_paths import reaches
from models.explain_schema import EvidenceKind, Explanation, ItemExplanation, PathFlag
from models.explain_effect import supports

#: The issue's aims, reported next to the measurements.
AIM_REACHED = 0.90
AIM_EVIDENCE_AND_EFFECT = 0.90
EXAMPLES = 3


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _reaching(item: ItemExplanation) -> list:
    return [p for p in item.paths if reaches(p)]


def _numeric_with_effect(item: ItemExplanation) -> bool:
    return any(PathFlag.NO_EFFECT not in p.flags and any(f.numeric for f in p.evidence)
               for p in _reaching(item))


def item_counts(explanations: Sequence[Explanation]) -> dict[str, Any]:
    """Reach, evidence and effect shares over every explained item."""
    counts: Counter[str] = Counter()
    for explanation in explanations:
        for item in explanation.items:
            counts["items"] += 1
            reaching = _reaching(item)
            if not reaching:
                continue
            counts["reached"] += 1
            counts["numeric_and_effect"] += _numeric_with_effect(item)
            counts["co_watch"] += any(f.kind == EvidenceKind.CO_WATCH
                                      for p in reaching for f in p.evidence)
            counts["interest"] += any(f.kind in (EvidenceKind.INTEREST_SIMILARITY,
                                                 EvidenceKind.LOCALIZED)
                                      for p in reaching for f in p.evidence)
            counts["genres_only"] += all(f.kind == EvidenceKind.SHARED_GENRES
                                         for p in reaching for f in p.evidence)
            counts["rank_effect"] += any(p.effect.delta_rank != 0 for p in reaching)
            counts["supported"] += any(supports(p.effect) and p.shown for p in reaching)
    reached = counts["reached"]
    return {
        "items": counts["items"], "items_reached": reached,
        "share_reached": _share(reached, counts["items"]),
        "items_numeric_evidence_and_effect": counts["numeric_and_effect"],
        "share_numeric_evidence_and_effect": _share(counts["numeric_and_effect"], reached),
        "share_reached_by_co_watch": _share(counts["co_watch"], reached),
        "share_reached_by_interest": _share(counts["interest"], reached),
        "share_reached_by_genres_only": _share(counts["genres_only"], reached),
        "share_reached_with_rank_effect": _share(counts["rank_effect"], reached),
        "share_reached_and_supported": _share(counts["supported"], reached),
        "aim_reached": AIM_REACHED, "aim_numeric_evidence_and_effect": AIM_EVIDENCE_AND_EFFECT,
    }


def reliance(explanations: Sequence[Explanation]) -> dict[str, Any]:
    """How much the fused model leans on its reasoning at all: each item with *all* chains
    and interests removed (the ceiling of any path's effect, and so of the deletion curves)."""
    effects = [i.without_reasoning for e in explanations for i in e.items
               if i.without_reasoning is not None]
    smooth = [abs(f.delta_soft_rank) for f in effects if f.delta_soft_rank is not None]
    return {"items": len(effects),
            "share_rank_moves": _share(sum(f.delta_rank != 0 for f in effects), len(effects)),
            "mean_abs_rank_change": float(np.mean([abs(f.delta_rank) for f in effects]))
            if effects else None,
            "median_abs_smooth_rank_change": float(np.median(smooth)) if smooth else None}


def examples(explanations: Sequence[Explanation], n: int = EXAMPLES) -> list[dict[str, Any]]:
    """The first users' top item each: its sentence and the facts of its strongest paths."""
    rows = []
    for explanation in explanations[:n]:
        if not explanation.items:
            continue
        item = explanation.items[0]
        facts = [f.text for p in item.paths if p.shown for f in p.evidence][:4]
        rows.append({"user": explanation.user, "item": item.title, "rank": item.rank,
                     "summary": item.summary, "evidence": facts})
    return rows


def bench_explanations(explainer: Explainer, user_ids: Sequence[str], *,
                       log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The explanation bench (see the module docstring) over ``user_ids``' fused top-k.

    Returns:
        a JSON-ready dict: ``users``, ``k``, ``reach`` (:func:`item_counts`),
        ``faithfulness``, ``meets``, ``examples``, ``seconds``,
        ``explain_seconds_p50``, ``interest_similarity``.
    """
    if not user_ids:
        raise ValueError("the explanation bench needs at least one user")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        explanations = []
        for n, user_id in enumerate(user_ids, start=1):
            explanations.append(explainer.explain(user_id))
            if n % 25 == 0 or n == len(user_ids):
                log(f"explained {n} of {len(user_ids)} users")
    finally:
        torch.set_num_threads(threads)
    reach = item_counts(explanations)
    faithful = faithfulness_of(explanations, explainer.random_orders)
    share_faster = faithful["share_users_faster"]
    return {
        "users": len(user_ids), "k": explainer.k,
        "interest_similarity": explainer.interest_similarity is not None,
        "reach": reach, "faithfulness": faithful, "reliance": reliance(explanations),
        "meets": {
            "reached": reach["share_reached"] is not None
            and reach["share_reached"] >= AIM_REACHED,
            "numeric_evidence_and_effect": reach["share_numeric_evidence_and_effect"] is not None
            and reach["share_numeric_evidence_and_effect"] >= AIM_EVIDENCE_AND_EFFECT,
            "explanation_order_faster": share_faster is not None
            and share_faster >= AIM_FASTER_SHARE},
        "examples": examples(explanations),
        "explain_seconds_p50": float(np.median([e.seconds for e in explanations])),
        "seconds": time.perf_counter() - started,
    }
