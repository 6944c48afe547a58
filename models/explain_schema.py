"""The explanation JSON of ``reasonrec explain --json`` and the app: pydantic models.

Conventions: ranks are 1-based positions in a top list (1 = first);
``delta_score`` and ``delta_rank`` are *after minus before*, so a removal that
hurts an item has a negative ``delta_score`` and a positive ``delta_rank``
(it moved down); ``rank_shift`` is *base rank minus fused rank* (positive:
fusion moved the item up). Texts from the LLM (``reason``, ``label``) are raw
and untrusted: renderers escape them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EXPLANATION_SCHEMA: Literal["reasonrec.explanation"] = "reasonrec.explanation"
#: 2 added evidence, flags, removals and summaries (#18); version-1 documents still load.
EXPLANATION_VERSION: Literal[2] = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemRef(_Strict):
    index: int = Field(ge=1, description="catalogue index")
    item_id: str
    title: str


class RankedItem(ItemRef):
    """An item in one model's top-k, with where the other model put it."""

    rank: int = Field(ge=1)
    score: float
    other_rank: int = Field(ge=1, description="the other model's rank of this item")
    rank_shift: int = Field(description="base rank - fused rank (positive: fusion moved it up)")
    base_rank: int | None = Field(None, ge=1, description="the item's rank in the unmodified "
                                                          "base model's ranking over all items "
                                                          "(same masking): places an item that "
                                                          "enters from outside the base top-k")


class TopK(_Strict):
    base: list[RankedItem]
    fused: list[RankedItem]


class Effect(_Strict):
    """What a change (zeroing a branch, removing a path) did to one item."""

    delta_score: float
    delta_rank: int
    rank_after: int = Field(ge=1)
    in_top_k_after: bool
    #: Change of the item's smooth rank (:func:`models.metrics.soft_rank`): positive when
    #: the other films gain on it. None in documents saved before it existed.
    delta_soft_rank: float | None = None


class BranchEffects(ItemRef):
    """Each fused top-k item under each zeroed branch (``ori``: E_ori, ``div``: E_div)."""

    rank: int = Field(ge=1)
    score: float
    zeroed: dict[str, Effect]


class WeightedItem(ItemRef):
    """A catalogue item an input stands for, with its weight."""

    weight: float


class ExplainedInput(_Strict):
    """A provided input the model read (an LLM-inferred interest), and what zeroing it does.

    ``branch`` names the model branch that reads it; ``branch_effects`` gives each
    top-k item's change with that branch zeroed, and ``left``/``entered`` the top-k
    items that leave or enter then, ``target_rank_after`` where the held-out item goes.
    """

    branch: str
    label: str
    text: str
    items: list[WeightedItem]
    left: list[ItemRef]
    entered: list[ItemRef]
    target_rank_after: int = Field(ge=1)


class PathKind(StrEnum):
    """What a path runs through (the values are the JSON's, kept from version 1)."""

    CHAIN = "chain"            # history items -> reasoning chain -> item
    INTEREST = "divergent"     # history items -> chain -> divergent interest -> item


class PathEnd(StrEnum):
    """Where a path ends. ``nearest_divergent`` is only read from version-1 documents:
    a nearest candidate never explains an item."""

    ITEM = "item"
    CHAIN_END = "chain_end"
    NEAREST_DIVERGENT = "nearest_divergent"


class PathFlag(StrEnum):
    """Why a default view hides a path (behind a toggle)."""

    NO_EVIDENCE = "no_evidence"            # no fact from the data links its last node to the item
    NO_EFFECT = "no_effect"                # removing it changes neither score nor rank
    REJECTED_CHAIN = "rejected_chain"      # its chain failed verification
    WORKS_AGAINST = "works_against"        # removing it raises the item: it is no reason for it


class EvidenceKind(StrEnum):
    """The kinds of fact a path's last hop (to the item) rests on."""

    CO_WATCH = "co_watch"                  # training viewers of a chain item who later watched it
    SHARED_GENRES = "shared_genres"        # catalogue genres shared with a chain item
    INTEREST_SIMILARITY = "interest_similarity"   # text-encoder similarity, interest vs item
    LOCALIZED = "localized"                # the graph builder matched the interest to the item


class EvidenceFact(_Strict):
    """One short checkable fact, with the numbers behind its ``text`` kept as fields.

    Co-watch counts are over the *training* interactions of the loo split
    (``models.protocol.leave_one_out``): never a validation or test target.
    ``viewers_both`` of the ``viewers_source`` training users who watched
    ``source`` watched ``target`` at a later position; ``lift`` is that share
    over the share of all ``users`` who watched ``target`` (``viewers_target``).
    """

    kind: EvidenceKind
    text: str = Field(description="the fact in plain words (titles are untrusted: escape)")
    numeric: bool = Field(description="the fact rests on a count or a measured similarity")
    source: ItemRef | None = Field(None, description="the history item the fact starts from")
    target: ItemRef
    viewers_source: int | None = Field(None, ge=0)
    viewers_both: int | None = Field(None, ge=0)
    viewers_target: int | None = Field(None, ge=0)
    users: int | None = Field(None, ge=0, description="users with training interactions")
    lift: float | None = None
    genres: list[str] = Field(default_factory=list)
    interest: str | None = Field(None, description="the LLM's interest text (untrusted)")
    similarity: float | None = None
    closer_than: float | None = Field(None, ge=0, le=1, description="share of the catalogue "
                                      "less similar to the interest than the target")


class PathRemoval(_Strict):
    """What removing a path takes out of the graph (``Explainer.removal`` ids): replaying it
    with ``Explainer.counterfactual`` gives ``ExplanationPath.effect``."""

    chains: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)
    edges: list[tuple[str, str]] = Field(default_factory=list)


class PathNode(_Strict):
    id: str
    kind: Literal["session_item", "intent", "candidate_item", "recommended_item"]
    step: int
    label: str = Field(description="item title or intent text")
    item_index: int | None = None


class PathEdge(_Strict):
    source: str
    target: str
    kind: Literal["chain", "diverge", "evidence"] = Field(
        description="evidence: the last hop, a fact from the data (``reason`` is its text)")
    reason: str | None = None
    intent: str | None = None
    score: float | None = Field(None, description="the chain's verification score")
    status: str | None = None
    weight: float | None = Field(None, description="intent-to-item similarity")


class ExplanationPath(_Strict):
    """A reasoning path to the explained item and its measured counterfactual effect.

    ``kind``: ``chain`` (the chain's history items -> the item) or ``divergent``
    (the chain's items -> its end -> a divergent interest -> the item).
    ``ends_at`` is ``item`` when a fact from the data (``evidence``) links the
    path's last node to the item (``reaches_item``); else ``chain_end``, and the
    path is flagged ``no_evidence``. The last edge (kind ``evidence``) is that
    link. ``removal`` is what the effect was measured by removing: the whole
    chain for a chain path, the interest node for a divergent one. ``shown``:
    reaches the item and carries no flag; default views list only those.
    """

    id: str
    kind: PathKind
    ends_at: PathEnd
    chain: str | None
    similarity: float | None = Field(None, description="the interest's text-encoder "
                                     "similarity to the item (divergent paths)")
    nodes: list[PathNode]
    edges: list[PathEdge]
    effect: Effect
    evidence: list[EvidenceFact] = Field(default_factory=list)
    flags: list[PathFlag] = Field(default_factory=list)
    removal: PathRemoval | None = None
    reaches_item: bool = False
    shown: bool = False


class DeletionCurve(_Strict):
    """The item's rank as its explanation paths are removed cumulatively.

    ``explanation_ranks[j]``: rank after removing the first ``j + 1`` paths in
    explanation order; ``random_ranks[j]``: the mean over the random orders:
    every order of the paths when there are at most ``random_orders`` of them
    (``random_exact``: the exact expectation over a uniformly random order),
    else that many seeded random orders. The areas are the sums of those ranks
    (the area under the rank-vs-deletions curve; the common start is left out).

    ``outcome`` says what the comparison means:

    * ``too_few_paths``: fewer than 2 paths, no order to compare (``faster`` None);
    * ``no_reaction``: no removal in any order moves the item's rank: the
      comparison is undefined (``faster`` False, kept out of the faithfulness
      shares and counted apart);
    * ``faster`` / ``slower`` / ``tied``: explanation order pushes the item down
      faster than (larger area), slower than, or exactly as fast as random.

    The ``*_smooth`` fields are the same curves on the item's smooth rank
    (:func:`models.metrics.soft_rank`, the list's temperature before any
    removal), read from the same scores. They move where the exact rank does
    not, so they compare the orders for items whose rank no removal changes too
    (None in documents saved before them).
    """

    start_rank: int = Field(ge=1)
    explanation_ranks: list[int]
    random_ranks: list[float]
    random_orders: int
    area_explanation: float
    area_random: float
    faster: bool | None
    random_exact: bool = False
    outcome: Literal["faster", "slower", "tied", "no_reaction", "too_few_paths"] | None = None
    start_smooth: float | None = None
    explanation_smooth: list[float] | None = None
    random_smooth: list[float] | None = None


class Fidelity(_Strict):
    """PyG's model fidelity adapted to "is the item in the top-k".

    ``plus`` = 1 - [prediction unchanged with the explanation removed];
    ``minus`` = 1 - [prediction unchanged with only the explanation kept] (all
    other reasoning removed; session items always stay). The explanation is
    the paths whose removal pushes the item down: a worse rank, or at an
    unchanged rank a higher smooth rank (models.explain_effect).
    """

    explanation_paths: int = Field(ge=0)
    in_top_k: bool
    plus: float = Field(ge=0, le=1)
    minus: float = Field(ge=0, le=1)


class ItemExplanation(ItemRef):
    """One item: its paths (strongest measured effect first), the sentence, faithfulness.

    ``summary`` is one plain sentence built by template from the shown paths'
    facts (``models.explain_summary``); it names no title absent from them.
    ``reached``: some path reaches the item. ``without_reasoning``: the item's
    rank change when every chain and interest is removed (positive: it falls).
    """

    rank: int = Field(ge=1)
    score: float
    paths: list[ExplanationPath]
    deletion: DeletionCurve
    fidelity: Fidelity
    summary: str = ""
    reached: bool = False
    without_reasoning: Effect | None = None


class Faithfulness(_Strict):
    """This user's summary over the explained items.

    Only items whose rank reacts to their paths (``DeletionCurve.outcome`` in
    faster/slower/tied) are compared; items with fewer than 2 paths and items
    that do not react are counted apart, never dropped silently.
    """

    items_compared: int = Field(ge=0, description="items with at least 2 paths")
    share_faster: float | None = Field(description="among items_reacting: explanation order "
                                                   "drops the rank faster than random")
    user_faster: bool | None = Field(description="summed over the reacting items, explanation "
                                                 "order drops ranks faster than random; None "
                                                 "when no item reacts")
    fidelity_plus: float | None
    fidelity_minus: float | None
    items_reacting: int = Field(0, ge=0, description="items with at least 2 paths whose rank "
                                                     "moves when paths are removed")
    items_no_reaction: int = Field(0, ge=0, description="items with at least 2 paths whose rank "
                                                        "no removal moves")
    items_too_few_paths: int = Field(0, ge=0, description="items with fewer than 2 paths")
    items_tied: int = Field(0, ge=0, description="reacting items with equal areas")


class PointInfo(_Strict):
    step: int = Field(ge=0, description="window step of the prefix graph")
    steps: int = Field(ge=1, description="window length L")
    role: Literal["train", "valid", "test"]
    history_length: int = Field(ge=1, description="items before the predicted position")
    target: ItemRef
    target_rank_base: int = Field(ge=1)
    target_rank_fused: int = Field(ge=1)


class Provenance(_Strict):
    base_model: str
    base_run: str
    fusion_variant: str
    fusion_run: str
    graph_source: str
    graph_backend: str = Field(description="what built the graph (the build log's backend)")


class Explanation(_Strict):
    """Everything ``reasonrec explain`` says about one user at one point."""

    schema_name: Literal["reasonrec.explanation"] = Field(EXPLANATION_SCHEMA, alias="schema")
    version: Literal[1, 2] = EXPLANATION_VERSION
    dataset: str
    user: str
    k: int = Field(ge=1)
    exclude_seen: bool
    point: PointInfo
    provenance: Provenance
    top_k: TopK
    branch_effects: list[BranchEffects]
    inputs: list[ExplainedInput] = Field(default_factory=list)
    items: list[ItemExplanation]
    faithfulness: Faithfulness
    seconds: float

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Counterfactual(_Strict):
    """Fused top-k before and after a removal."""

    removed_chains: list[str]
    removed_nodes: list[str]
    removed_edges: list[tuple[str, str]]
    top_k: list[RankedItem] = Field(description="after; other_rank = rank before the removal, "
                                                "rank_shift = before - after")
    entered: list[ItemRef]
    left: list[ItemRef]
    focus: Effect | None = None
