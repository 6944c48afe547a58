"""Per-row columns of the fusion bench that hold for every strategy: LLM cost and popularity.

* **Cost** per sampled user, read from what each row's inputs recorded when
  they were built: a row reading reasoning graphs pays its graphs' build logs
  (LLM calls, prompt + generated tokens, LLM seconds; knowledge-base hits cost
  nothing, so this is the cost as built, not cold: ``kb_hits_per_user`` says how
  many answers were reused); a row reading provided
  inputs pays what its provider reports (``cost()``, e.g. the LM-score store's
  per-point stats); the base and the control call no LLM. Training seconds
  come from the row's fit report.
* **Popularity** (the LM-ranking literature's warning, Hou et al. 2024): the
  share of a row's test top-10 items that lie in the catalogue's most popular
  5% by training interactions, next to the base model's share.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch

from models.fusion.fit import FusionRun
from models.fusion.samples import Variant
from models.fusion.strategy import Need
from models.fusion.train import score_samples
from models.fusion.workspace import BUILT_IN, FusionWorkspace

POPULAR_SHARE = 0.05
TOP = 10


def _zero_cost() -> dict[str, float]:
    return {"llm_calls": 0.0, "tokens": 0.0, "llm_seconds": 0.0, "kb_hits": 0.0}


def graph_cost(workspace: FusionWorkspace) -> dict[str, float]:
    """Mean LLM calls, tokens and seconds per sampled user of their graphs' build logs."""
    logs = [u.graph.graph.get("build_log") for u in workspace.user_graphs]
    logs = [b for b in logs if b is not None]
    if not logs:
        return _zero_cost()
    return {"llm_calls": float(np.mean([b.llm_calls for b in logs])),
            "tokens": float(np.mean([b.tokens_in + b.tokens_out for b in logs])),
            "llm_seconds": float(np.mean([b.llm_seconds for b in logs])),
            # answers reused from the knowledge base cost nothing here: a graph built on a
            # warm KB shows few calls; these say how many questions it did not pay for
            "kb_hits": float(np.mean([b.kb_hits for b in logs]))}


def llm_cost(workspace: FusionWorkspace, chosen: Variant | None) -> dict[str, Any]:
    """The row's LLM cost per user (``chosen`` None: the base row), and where it comes from."""
    total = _zero_cost()
    sources: list[str] = []
    needs = chosen.needs if chosen is not None else frozenset()
    if Need.REASONING_GRAPH in needs:
        for key, value in graph_cost(workspace).items():
            total[key] += value
        sources.append("reasoning graphs' build logs")
    for need in sorted(needs - BUILT_IN, key=lambda n: n.value):
        provider = workspace.providers.get(need)
        cost = getattr(provider, "cost", None)
        if cost is None:
            continue
        workspace.provided(need)   # the provider records the cost as it reads its inputs
        for key, value in cost().items():
            total[key] = total.get(key, 0.0) + value
        sources.append(f"{need.value} store")
    return {**{f"{k}_per_user": v for k, v in total.items()}, "from": sources or ["no LLM"]}


def popular_items(workspace: FusionWorkspace) -> set[int]:
    """The most popular ``POPULAR_SHARE`` of the catalogue by training interactions."""
    counts = Counter(int(i) for history in workspace.split.train for i in history)
    size = max(1, int(round(POPULAR_SHARE * workspace.dataset.n_items)))
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    return set(ranked[:size])


def _share(scores: torch.Tensor, popular: set[int]) -> float:
    scores = scores.clone()
    scores[:, 0] = -torch.inf
    top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :TOP]
    return float(np.mean([int(i) in popular for i in top.flatten().tolist()]))


def popularity_share(workspace: FusionWorkspace, run: FusionRun | None,
                     popular: set[int]) -> float:
    """Share of the test top-10 items (all sampled users) in ``popular``; None run: the base."""
    if run is None:
        index = workspace.points.indices("test")
        scores = workspace.points.e_base[index] @ workspace.item_table.T
    else:
        scores = score_samples(run.strategy, workspace.samples(run.variant, "test"))
    return _share(scores, popular)
