"""Explanations of fused recommendations, each backed by a measured counterfactual.

A pure library: the app (#5) and ``reasonrec explain`` only call it. For one
user at one point of their window (:meth:`Explainer.point`) it gives:

* :meth:`Explainer.top_k`: base and fused top-k side by side, with rank shifts;
* :meth:`Explainer.branch_effects`: each fused top-k item's score and rank
  change when one branch of the fused model (E_ori, E_div for LLMRG) is zeroed;
* :meth:`Explainer.counterfactual`: the fused top-k after removing any chains,
  nodes, reasoning edges or session items (what entered, what left);
* :meth:`Explainer.explain_item`: the paths from the user's history items
  through each reasoning chain (and divergent interest) to the item itself,
  the last hop a fact from the data (``models.explain_paths``,
  ``models.evidence``), each with the Δscore and Δrank *measured* by removing
  the chain or interest, ranked by that effect (largest Δrank first, then
  largest score drop); one plain sentence (``models.explain_summary``); the
  deletion curve and fidelity+/- (``models.explain_faithfulness``);
* :meth:`Explainer.explain`: all of it as an :class:`Explanation`.

Every score comes from ``models.explain_scoring.CounterfactualScorer`` (the
graph with the removal applied, one batched forward pass per explanation).
The explainer works for every registered fusion strategy: it reads the model
through ``FusionStrategy`` (forward, collate, branches) and the removals
through its variant's ``models.fusion.strategy.Counterfactuals``. A removal of
something a strategy does not read (a chain, for the sequence-graph control)
leaves its scores unchanged, and the explanation shows exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from models.data import Dataset
from models.evidence import CachedSimilarity, CoWatchIndex, InterestSimilarity
from models.explain_effect import has_no_effect, strength, supports
from models.explain_faithfulness import (REACTING, deletion_curve, explanation_order_faster,
                                         fidelity, rank_rows, summarize, user_outcome)
from models.explain_paths import CandidatePath, candidate_paths, path_json, reaches
from models.explain_removal import NOTHING, Edge, Removal
from models.explain_scoring import CounterfactualScorer, ExplainPoint
from models.explain_schema import (EXPLANATION_SCHEMA, BranchEffects, Counterfactual, DeletionCurve,
                                   Effect, ExplainedInput, Explanation, Fidelity, ItemExplanation,
                                   ItemRef, PointInfo, Provenance, RankedItem, TopK, WeightedItem)
from models.explain_summary import summary
from models.fusion.base import BASE, FusionStrategy
from models.fusion.samples import UserGraph
from models.fusion.strategy import Counterfactuals, Need, RemovableKind
from models.graph_data import IntentIndex, reasoning_elements
from models.graph_sources import GraphSource, graph_backend, source_label
from models.metrics import (mask_padding, soft_rank, soft_rank_temperature, soft_ranks,
                            target_ranks, top_items)
from models.protocol import leave_one_out
from models.recommenders import Recommender

#: Re-exported: callers import these from here.
__all__ = ["NOTHING", "REACTING", "Edge", "ExplainPoint", "Explainer", "Removal",
           "explanation_order_faster", "summarize", "user_outcome"]


_ranks = rank_rows


class Explainer(CounterfactualScorer):
    """Explains a fused model's recommendations for any user with a reasoning graph.

    Args:
        dataset: the dataset (histories, catalogue).
        base: the frozen base model (E_base and the base top-k).
        strategy: the trained fused model (any registered strategy).
        chosen: the variant it was trained as (``models.fusion.samples.Variant``):
            how a removal changes its inputs.
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
        interest_similarity: the localizer (``reasoning.localizer.IntentLocalizer``,
            its ``encoder_scores``) for interest-to-item facts; None: interests
            reach an item only where the graph builder matched them to it.
        extras: the inputs providers built for the workspace's sample, by user
            token (``FusionWorkspace.extras``): LM scores, LLM interests.
    """

    def __init__(self, dataset: Dataset, base: Recommender, strategy: FusionStrategy,
                 chosen: Counterfactuals, intents: IntentIndex, source: GraphSource, max_len: int, *,
                 k: int = 10, exclude_seen: bool = True, seed: int = 0, random_orders: int = 10,
                 max_paths: int = 8, provenance: Mapping[str, str] | None = None,
                 interest_similarity: InterestSimilarity | None = None,
                 extras: Mapping[str, Mapping[Need, Any]] | None = None) -> None:
        if strategy.name != chosen.strategy:
            raise ValueError(f"the fused model is a {strategy.name} model, but variant "
                             f"{chosen.name} is trained as {chosen.strategy.value}")
        if k < 1 or random_orders < 1 or max_paths < 1:
            raise ValueError("k, random_orders and max_paths must be positive")
        self.dataset = dataset
        self.base = base
        self.strategy = strategy.eval()
        self.variant = chosen
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
        self.interest_similarity = interest_similarity
        self.extras = dict(extras or {})
        self._co_watch: CoWatchIndex | None = None
        self._similarity: CachedSimilarity | None = None

    # --------------------------------------------------------------- the views
    def item_ref(self, index: int) -> ItemRef:
        item = self.dataset.catalogue[int(index)]
        return ItemRef(index=item.index, item_id=item.item_id, title=item.display_name)

    def _ranked(self, scores: Tensor, other: Tensor, base_first: bool,
                base: Tensor) -> list[RankedItem]:
        """Top-k rows of ``scores``; ``other`` gives ``other_rank``, ``base`` (the unmodified
        base scores) gives ``base_rank``."""
        order = top_items(scores, self.k)
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
        return self._effects(before, after[None], item)[0]

    def _effects(self, before: Tensor, rows: Tensor, item: int) -> list[Effect]:
        """The item's change from the row ``before [n + 1]`` to each of ``rows [R, n + 1]``."""
        rank_before = int(_ranks(before[None], item)[0])
        ranks_after = _ranks(rows, item).tolist()
        # One temperature for every row (the unchanged list's), so the changes are comparable.
        temperature = soft_rank_temperature(before)
        soft_before = soft_rank(before, item, temperature)
        soft_after = soft_ranks(rows, item, temperature).tolist()
        return [Effect(delta_score=float(row[item] - before[item]),
                       delta_rank=rank_after - rank_before, rank_after=rank_after,
                       in_top_k_after=rank_after <= self.k,
                       delta_soft_rank=soft - soft_before)
                for row, rank_after, soft in zip(rows, ranks_after, soft_after)]

    @property
    def removable(self) -> frozenset[RemovableKind]:
        """What removals change this model's inputs (others leave its scores as they are)."""
        return self.variant.removable

    @torch.no_grad()
    def branch_effects(self, point: ExplainPoint) -> list[BranchEffects]:
        """Each fused top-k item's Δscore and Δrank with each branch's vector zeroed."""
        inputs = self.strategy.collate([self.model_input(point, NOTHING).inputs])
        zeroed = {}
        for branch in self.strategy.branches:
            if branch == BASE:
                continue
            scores = self.strategy(point.e_base, inputs, zero=[branch])[0]
            zeroed[branch] = scores.float().masked_fill(point.masked, -torch.inf)
        rows = []
        for rank, item in enumerate(top_items(point.fused_scores, self.k), start=1):
            rows.append(BranchEffects(
                **self.item_ref(item).model_dump(), rank=rank,
                score=float(point.fused_scores[item]),
                zeroed={b: self._effect(point.fused_scores, s, item) for b, s in zeroed.items()}))
        return rows

    @torch.no_grad()
    def explained_inputs(self, point: ExplainPoint) -> list[ExplainedInput]:
        """The provided inputs the model read at the point (its variant's notes), each with
        the top-k change and the held-out item's rank when its branch is zeroed."""
        notes = self.variant.describe_inputs(point.user, point.step)
        if not notes:
            return []
        inputs = self.strategy.collate([self.model_input(point, NOTHING).inputs])
        before = top_items(point.fused_scores, self.k)
        # A re-watched target is hidden by the seen-mask: rank it among all items then.
        seen = bool(point.masked[point.target])
        rows = []
        for note in notes:
            raw = self.strategy(point.e_base, inputs, zero=[note.branch])[0].float()
            mask_padding(raw)
            after = raw.masked_fill(point.masked, -torch.inf)
            after_top = top_items(after, self.k)
            rows.append(ExplainedInput(
                branch=note.branch, label=note.label, text=note.text,
                items=[WeightedItem(**self.item_ref(i).model_dump(), weight=w)
                       for i, w in note.items],
                left=[self.item_ref(i) for i in before if i not in after_top],
                entered=[self.item_ref(i) for i in after_top if i not in before],
                target_rank_after=int(_ranks((raw if seen else after)[None], point.target)[0])))
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
        before_top = top_items(point.fused_scores, self.k)
        after_top = top_items(after, self.k)
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
    @property
    def co_watch(self) -> CoWatchIndex:
        """Co-watch counts over the loo split's training interactions (built on first use)."""
        if self._co_watch is None:
            train = leave_one_out(self.dataset, self.max_len).train
            self._co_watch = CoWatchIndex(train, self.dataset.n_items)
        return self._co_watch

    @property
    def cached_similarity(self) -> CachedSimilarity | None:
        """``interest_similarity`` with its scores per interest text remembered (rebuilt when
        the attribute is replaced)."""
        if self.interest_similarity is None:
            return None
        if self._similarity is None or self._similarity.similarity is not self.interest_similarity:
            self._similarity = CachedSimilarity(self.interest_similarity)
        return self._similarity

    def paths(self, point: ExplainPoint, item: int) -> list[CandidatePath]:
        """Candidate paths of ``item`` at ``point``, with their facts (unmeasured, unordered)."""
        return candidate_paths(point.prefix, item, self.dataset.catalogue, self.co_watch,
                               self.cached_similarity, reasoning_elements(point.prefix)[0])

    def all_reasoning(self, point: ExplainPoint) -> Removal:
        """Every chain and interest at the point: removing it leaves the plain session."""
        chains, nodes = reasoning_elements(point.prefix)
        return Removal(chains=tuple(chains), nodes=tuple(nodes))

    @torch.no_grad()
    def explain_item(self, point: ExplainPoint, item: int) -> ItemExplanation:
        """Paths to ``item`` with facts and measured effects, its sentence, deletion curve
        and fidelity.

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
        everything = self.all_reasoning(point)
        measured = self.scores(point, [p.removal for p in candidates] + [everything])
        *effects, without = self._effects(full, measured, item)
        # Strongest first by the measured effect on what the user sees, the rank
        # (exact, then smooth: models.explain_effect).
        ranked = sorted(zip(candidates, effects), key=lambda t: (*strength(t[1]), t[0].id))
        # Every path of the model's reasoning that reaches the item is kept; the other
        # paths with an effect fill up to max_paths; paths without an effect come last,
        # flagged, and stay out of the deletion curve (they would only pad its order).
        reaching = [t for t in ranked if t[0].reaches_item and not t[0].rejected]
        inert = [t for t in ranked if has_no_effect(t[1]) and t not in reaching]
        rest = [t for t in ranked if t not in reaching and t not in inert]
        chosen = {id(t) for t in reaching + rest[: max(0, self.max_paths - len(reaching))]}
        kept = [t for t in ranked if id(t) in chosen]
        kept += inert[: max(0, self.max_paths - len(kept))]
        active = [p.removal for p, e in kept if not has_no_effect(e)]
        deletion = self._deletion(point, item, active)
        fidelity = self._fidelity(point, item, [p.removal for p, e in kept if supports(e)])
        ref = self.item_ref(item)
        titles = {item: ref.title}
        paths = [path_json(point.prefix, p, e, item, titles, point.step) for p, e in kept]
        return ItemExplanation(**ref.model_dump(), rank=int(_ranks(full[None], item)[0]),
                               score=float(full[item]), paths=paths, deletion=deletion,
                               fidelity=fidelity,
                               summary=summary(ref.title, paths, without, self.k),
                               reached=any(reaches(p) for p in paths),
                               without_reasoning=without)

    def _deletion(self, point: ExplainPoint, item: int, units: list[Removal]) -> DeletionCurve:
        return deletion_curve(self, point, item, units)

    def _fidelity(self, point: ExplainPoint, item: int, support: list[Removal]) -> Fidelity:
        return fidelity(self, point, item, support)

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
        chosen = list(items) if items is not None else top_items(point.fused_scores, self.k)
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
                           inputs=self.explained_inputs(point),
                           items=explained, faithfulness=summarize(explained),
                           seconds=time.perf_counter() - started)


def _item_ranks(scores: Tensor, items: Tensor) -> list[int]:
    """1-based rank of each of ``items`` in the one row ``scores [n + 1]``."""
    return [int(r) + 1 for r in target_ranks(scores[None].expand(len(items), -1), items)]
