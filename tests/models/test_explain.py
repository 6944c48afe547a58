"""Explanations: top-k, branch effects, counterfactuals, measured paths, faithfulness, schema."""

from __future__ import annotations

import json

import pytest
import torch

from models.data import Dataset, load_dataset
from models.explain import NOTHING, Explainer, ExplainPoint, Removal, summarize, user_outcome
from models.explain_faithfulness import smooth_area_difference, smooth_outcome
from models.explain_paths import reaches
from models.explain_schema import (DeletionCurve, EvidenceKind, Explanation, ExplanationPath,
                                   Fidelity, ItemExplanation, PathFlag)
from models.fusion.samples import VARIANTS, base_vectors
from models.fusion.workspace import FusionWorkspace
from models.graph_data import (GraphPair, IntentIndex, counterfactual_pair, reasoning_elements,
                               sequence_graph)
from models.graph_sources import FirstGraphSource
from models.metrics import soft_rank, soft_rank_temperature
from models.recommenders import create
from tests.models.fusion_setup import random_llmrg, small_workspace
from tests.models.reasoning_graphs import INTENTS, example_graph
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def workspace(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> FusionWorkspace:
    return small_workspace(ml100k, tmp_path_factory.mktemp("runs"), users=12)


@pytest.fixture(scope="module")
def explainer(workspace: FusionWorkspace) -> Explainer:
    return Explainer(workspace.dataset, workspace.base.model, random_llmrg(workspace),
                     VARIANTS["llmrg"], workspace.intents, workspace.source,
                     workspace.split.max_len, k=10, random_orders=4, max_paths=6)


def removal_of(path: ExplanationPath) -> Removal:
    assert path.removal is not None
    return Removal(tuple(path.removal.chains), tuple(path.removal.nodes),
                   tuple(tuple(e) for e in path.removal.edges))


def active(paths: list[ExplanationPath]) -> list[ExplanationPath]:
    """The paths with a measured effect: the deletion curve's units, in order."""
    return [p for p in paths if PathFlag.NO_EFFECT not in p.flags]


def user_ids(workspace: FusionWorkspace, n: int = 4) -> list[str]:
    return [u.user_id for u in workspace.user_graphs[:n]]


@torch.no_grad()
def independent_scores(explainer: Explainer, point: ExplainPoint, *, chains: tuple = (),
                       nodes: tuple = (), edges: tuple = ()) -> torch.Tensor:
    """Fused scores recomputed without the explainer's caches or batching."""
    graph = point.user.graph.copy()
    graph.remove_edges_from(edges)
    pair = counterfactual_pair(graph, explainer.intents, point.step, chains=chains, nodes=nodes,
                               options=VARIANTS["llmrg"].options)
    e_base = base_vectors(explainer.base, [point.user.base_input(point.step, pair.session)],
                          explainer.max_len)
    scores = explainer.strategy(e_base, explainer.strategy.pair_inputs([pair]))[0]
    scores[0] = -torch.inf
    return scores.masked_fill(point.masked, -torch.inf)


# ------------------------------------------------------------ real ml-100k
def test_removing_every_reasoning_element_gives_the_control_ranking(
        explainer: Explainer, workspace: FusionWorkspace) -> None:
    for user_id in user_ids(workspace):
        for step in (None, 5):
            point = explainer.point(user_id, step)
            chains, nodes = reasoning_elements(point.prefix)
            stripped = explainer.counterfactual(point, explainer.removal(point, chains=chains,
                                                                         nodes=nodes))
            window = point.user.window[: point.step + 1]
            control = GraphPair(rea=sequence_graph(window), div=sequence_graph([]), session=window)
            with torch.no_grad():
                scores = explainer.strategy(point.e_base, explainer.strategy.pair_inputs([control]))
            scores = scores[0].masked_fill(point.masked, -torch.inf)
            expected = torch.argsort(-scores, stable=True)[:10].tolist()
            assert [r.index for r in stripped.top_k] == expected
            assert [r.score for r in stripped.top_k] == pytest.approx(
                scores[expected].tolist(), abs=1e-5)
            # ... while the reasoning does move this (random) model's scores.
            assert not torch.allclose(point.fused_scores[expected], scores[expected])


def test_removing_a_path_changes_the_score_exactly_as_explained(
        explainer: Explainer, workspace: FusionWorkspace) -> None:
    moved = 0
    for user_id in user_ids(workspace):
        point = explainer.point(user_id)
        for item in [r.index for r in explainer.top_k(point).fused[:3]] + [point.target]:
            explanation = explainer.explain_item(point, item)
            # Ranked by measured effect: the largest rank drop first, then the largest
            # smooth-rank rise among equal rank changes; paths without an effect come last.
            measured = active(explanation.paths)
            effects = [(-p.effect.delta_rank, -p.effect.delta_soft_rank) for p in measured]
            assert effects == sorted(effects)
            assert explanation.paths[:len(measured)] == measured
            for path in explanation.paths:
                removal = removal_of(path)
                after = independent_scores(explainer, point, chains=removal.chains,
                                           nodes=removal.nodes)
                before = point.fused_scores
                assert path.effect.delta_score == pytest.approx(
                    float(after[item] - before[item]), abs=1e-5)
                tied_before = (after == after[item]) & (torch.arange(len(after)) < item)
                rank = int((after > after[item]).sum() + tied_before.sum())
                assert path.effect.rank_after == rank + 1
                temperature = soft_rank_temperature(before)
                assert path.effect.delta_soft_rank == pytest.approx(
                    soft_rank(after, item, temperature) - soft_rank(before, item, temperature),
                    abs=1e-3)
                moved += abs(path.effect.delta_score) > 1e-6
            if measured:   # the curve starts with the strongest path's removal
                assert explanation.deletion.explanation_ranks[0] == measured[0].effect.rank_after
            # Never a candidate merely near the item: a path reaches it through a fact or not.
            assert all(p.ends_at in ("item", "chain_end") for p in explanation.paths)
            assert all(bool(p.evidence) == (p.ends_at == "item") for p in explanation.paths)
    assert moved > 0, "no path moved any score: the test would pass vacuously"


def test_explain_output_validates_against_its_schema(explainer: Explainer,
                                                     workspace: FusionWorkspace) -> None:
    user_id = user_ids(workspace, 1)[0]
    explanation = explainer.explain(user_id)
    text = json.dumps(explanation.model_dump(mode="json", by_alias=True))
    again = Explanation.model_validate_json(text)
    assert again == explanation and json.loads(text)["schema"] == "reasonrec.explanation"
    assert [r.rank for r in explanation.top_k.fused] == list(range(1, 11))
    base_rank = {r.index: r.rank for r in explanation.top_k.base}
    for row in explanation.top_k.fused:
        assert row.rank_shift == row.other_rank - row.rank
        if row.index in base_rank:
            assert row.other_rank == base_rank[row.index]
    assert [i.index for i in explanation.items] == [r.index for r in explanation.top_k.fused]
    for item in explanation.items:
        assert len(item.deletion.explanation_ranks) == len(active(item.paths))
        assert len(item.paths) <= max(6, sum(map(reaches, item.paths)))
        assert item.summary and item.reached == any(map(reaches, item.paths))
        assert item.fidelity.in_top_k and item.fidelity.plus in (0.0, 1.0)
    assert explanation.provenance.graph_backend == "genre-heuristic"
    # a point the caller already scored (the app's export) gives the same explanation
    reused = explainer.explain(explainer.point(user_id))
    assert reused.model_dump(exclude={"seconds"}) == explanation.model_dump(exclude={"seconds"})
    bad = json.loads(text)
    bad["items"][0]["paths"] = "none"
    with pytest.raises(ValueError):
        Explanation.model_validate(bad)


def test_branch_effects_equal_the_zeroed_forward_pass(explainer: Explainer,
                                                      workspace: FusionWorkspace) -> None:
    point = explainer.point(user_ids(workspace, 1)[0])
    inputs = explainer.strategy.collate([explainer.model_input(point, NOTHING).inputs])
    with torch.no_grad():
        zeroed = explainer.strategy(point.e_base, inputs, zero=["div"])[0]
    rows = explainer.branch_effects(point)
    assert [r.index for r in rows] == [r.index for r in explainer.top_k(point).fused]
    for row in rows:
        assert set(row.zeroed) == {"ori", "div"}
        assert row.zeroed["div"].delta_score == pytest.approx(
            float(zeroed[row.index] - point.fused_scores[row.index]), abs=1e-5)


def test_removing_a_session_item_re_encodes_the_base_input(explainer: Explainer,
                                                           workspace: FusionWorkspace) -> None:
    point = explainer.point(user_ids(workspace, 1)[0])
    item_id = workspace.dataset.catalogue[point.user.window[3]].item_id
    removal = explainer.removal(point, items=[item_id])
    assert "s3" in removal.nodes
    result = explainer.counterfactual(point, removal, focus=point.target)
    after = independent_scores(explainer, point, nodes=removal.nodes)
    assert [r.index for r in result.top_k] == torch.argsort(-after, stable=True)[:10].tolist()
    assert result.focus.delta_score == pytest.approx(
        float(after[point.target] - point.fused_scores[point.target]), abs=1e-5)
    before = {r.index for r in explainer.top_k(point).fused}
    assert {i.index for i in result.left} == before - {r.index for r in result.top_k}


def test_bad_input_gives_clear_errors(explainer: Explainer, workspace: FusionWorkspace) -> None:
    user_id = user_ids(workspace, 1)[0]
    point = explainer.point(user_id)
    with pytest.raises(KeyError, match="unknown user"):
        explainer.point("no-such-user")
    with pytest.raises(ValueError, match="outside user .* window"):
        explainer.point(user_id, 10)
    with pytest.raises(KeyError, match="not in user .* graph at step 9: c99"):
        explainer.removal(point, chains=["c99"])
    u, v = next((u, v) for u, v, a in point.prefix.edges(data=True) if a["kind"] == "sequence")
    with pytest.raises(KeyError, match=f"no chain or diverge edge {u}->{v}"):
        explainer.removal(point, edges=[(u, v)])             # the window order is not removable
    with pytest.raises(KeyError, match="no chain or diverge edge s9->s0"):
        explainer.removal(point, edges=[("s9", "s0")])        # no such edge
    with pytest.raises(KeyError, match="not in user .* window"):
        explainer.removal(point, items=[workspace.dataset.catalogue[point.target].item_id])
    with pytest.raises(ValueError, match="already seen"):
        explainer.explain_item(point, point.user.window[0])
    with pytest.raises(ValueError, match="llmrg model, but variant seqgraph is trained as "
                                         "seqgraph"):
        Explainer(workspace.dataset, workspace.base.model, explainer.strategy,
                  VARIANTS["seqgraph"], workspace.intents, workspace.source, 50)


# ---------------------------------------------------------- hand-built graph
@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Explainer, Dataset]:
    """example_graph()'s user u1 in a 30-item dataset: history i1, then its window, then i17."""
    folder = tmp_path_factory.mktemp("toy")
    history = [1, 5, 9, 2, 7, 11, 3, 8, 14, 17]
    (folder / "toy.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"u1\ti{item}\t{t}\n" for t, item in enumerate(history))
        + "u2\ti3\t1\nu2\ti4\t2\nu2\ti6\t3\n")
    (folder / "toy.item").write_text("item_id:token\tmovie_title:token_seq\n" + "".join(
        f"i{i}\tMovie {i}\n" for i in range(1, 31)))
    dataset = load_dataset(folder)
    assert [dataset.catalogue[i].item_id for i in range(1, 31)] == [f"i{i}" for i in range(1, 31)]
    torch.manual_seed(0)
    base = create("gru4rec", 30, {"embedding_size": 8, "hidden_size": 8})
    from models.fusion import create as create_fusion
    strategy = create_fusion("llmrg", 30, 8, identity_init=False,
                             num_intents=len(INTENTS) + 1).eval()

    class HandBuilt:
        label = "hand-built"

        def get(self, user_id: str):
            return example_graph() if user_id == "u1" else None

    explainer = Explainer(dataset, base, strategy, VARIANTS["llmrg"], IntentIndex(INTENTS),
                          FirstGraphSource(HandBuilt()), 50, k=5, random_orders=3)
    return explainer, dataset


def test_paths_of_a_hand_built_graph(toy: tuple[Explainer, Dataset]) -> None:
    explainer, _ = toy
    point = explainer.point("u1")
    assert point.target == 17 and point.user.offset == 1
    paths = {p.id: p for p in explainer.explain_item(point, 20).paths}
    # One path per chain, one per interest; c20 is matched by dc1.1 (from c1's end s5)
    # and dc3.1 (from c3's end s7) when the graph was built.
    assert set(paths) == {"c1", "c2", "c3", "c1>dc1.1", "c1>dc1.2", "c3>dc3.1"}
    c1 = paths["c1>dc1.1"]
    assert [(e.source, e.target) for e in c1.edges] == [("s0", "s2"), ("s2", "s5"),
                                                        ("s5", "dc1.1"), ("dc1.1", "c20")]
    assert [e.kind for e in c1.edges] == ["chain", "chain", "diverge", "evidence"]
    assert [n.id for n in c1.nodes] == ["s0", "s2", "s5", "dc1.1", "c20"] and c1.ends_at == "item"
    assert c1.edges[0].reason == "light comedy again" and c1.edges[0].score == 0.8
    assert [n.label for n in c1.nodes][-2:] == ["dark thriller", "Movie 20"]
    assert c1.evidence[0].kind == EvidenceKind.LOCALIZED and c1.evidence[0].similarity == 0.9
    assert c1.removal.nodes == ["dc1.1"] and c1.reaches_item
    # dc1.2 proposed other films: no fact links it to item 20, so it does not reach it.
    assert paths["c1>dc1.2"].ends_at == "chain_end" and not paths["c1>dc1.2"].shown
    assert PathFlag.NO_EVIDENCE in paths["c1>dc1.2"].flags
    # c2 is rejected: its edges are not in G_rea, so removing it measurably does nothing.
    assert paths["c2"].effect.delta_score == 0.0 and paths["c2"].effect.delta_rank == 0
    assert {PathFlag.REJECTED_CHAIN, PathFlag.NO_EFFECT} <= set(paths["c2"].flags)
    assert paths["c1"].effect.delta_score != 0.0 and paths["c1"].removal.chains == ["c1"]
    # Item 25 is no candidate and the toy data has no co-watch or genres: nothing reaches it,
    # and no nearby candidate is offered instead.
    far = explainer.explain_item(point, 25)
    assert not far.reached and all(p.ends_at == "chain_end" for p in far.paths)
    assert far.summary.startswith("No reasoning path reaches this item; it comes from the base "
                                  "model (removing all reasoning ")


def test_deletion_curve_and_fidelity_by_recomputation(toy: tuple[Explainer, Dataset]) -> None:
    explainer, _ = toy
    point = explainer.point("u1")
    item = explainer.top_k(point).fused[0].index
    explained = explainer.explain_item(point, item)
    units = [removal_of(p) for p in active(explained.paths)]
    removed = NOTHING
    for j, unit in enumerate(units):
        removed = removed.union(unit)
        scores = independent_scores(explainer, point, chains=removed.chains, nodes=removed.nodes)
        rank = int((scores > scores[item]).sum() + 1)
        assert explained.deletion.explanation_ranks[j] == rank
    # Support: paths whose removal pushes the item down (rank, then score at an equal rank).
    support = [removal_of(p) for p in explained.paths
               if p.effect.delta_rank > 0 or (p.effect.delta_rank == 0
                                              and p.effect.delta_score < 0)]
    assert explained.fidelity.explanation_paths == len(support)
    without = NOTHING
    for unit in support:
        without = without.union(unit)
    scores = independent_scores(explainer, point, chains=without.chains, nodes=without.nodes)
    still_in = int((scores > scores[item]).sum() + 1) <= explainer.k
    assert explained.fidelity.plus == float(not still_in)
    curve = explained.deletion
    assert len(curve.random_ranks) == len(units)
    assert curve.area_explanation == sum(curve.explanation_ranks)
    assert curve.area_random == pytest.approx(sum(curve.random_ranks))
    if len(units) < 2:
        assert curve.faster is None and curve.outcome == "too_few_paths"
    else:
        assert curve.faster is (curve.outcome == "faster")
    with pytest.raises(LookupError, match="no reasoning graph for user u2 in hand-built"):
        explainer.point("u2")


def test_deletion_curve_separates_no_reaction_and_uses_every_order_when_few(
        toy: tuple[Explainer, Dataset]) -> None:
    explainer, _ = toy
    point = explainer.point("u1")
    item = explainer.top_k(point).fused[0].index
    # c2 is rejected: G_rea never has its edge, so removing it in any form moves nothing.
    inert = [Removal(edges=(("s1", "s3"),)), Removal(chains=("c2",))]
    flat = explainer._deletion(point, item, inert)
    assert flat.outcome == "no_reaction" and flat.faster is False
    assert flat.explanation_ranks == [flat.start_rank] * 2
    # Two units, 3 random orders allowed: both orders are used, the exact mean.
    c1, c3 = Removal(chains=("c1",)), Removal(chains=("c3",))
    curve = explainer._deletion(point, item, [c1, c3])
    assert curve.random_exact and curve.random_orders == 2
    alone = [int(_rank(explainer.scores(point, [u])[0], item)) for u in (c1, c3)]
    both = int(_rank(explainer.scores(point, [c1.union(c3)])[0], item))
    assert curve.explanation_ranks == [alone[0], both]
    assert curve.random_ranks == pytest.approx([(alone[0] + alone[1]) / 2, both])
    expected = ("faster" if alone[0] > alone[1] else "slower" if alone[0] < alone[1] else
                "tied" if (alone[0] != curve.start_rank or both != curve.start_rank)
                else "no_reaction")
    assert curve.outcome == expected
    # The smooth-rank curves come from the same rows, at the unchanged list's temperature.
    t = soft_rank_temperature(point.fused_scores)
    soft_alone = [soft_rank(explainer.scores(point, [u])[0], item, t) for u in (c1, c3)]
    soft_both = soft_rank(explainer.scores(point, [c1.union(c3)])[0], item, t)
    assert curve.start_smooth == pytest.approx(soft_rank(point.fused_scores, item, t))
    assert curve.explanation_smooth == pytest.approx([soft_alone[0], soft_both])
    assert curve.random_smooth == pytest.approx([sum(soft_alone) / 2, soft_both])
    assert smooth_area_difference(curve) == pytest.approx((soft_alone[0] - soft_alone[1]) / 2)
    one = explainer._deletion(point, item, [c1])
    assert one.outcome == "too_few_paths" and one.faster is None
    assert smooth_area_difference(one) is None and len(one.explanation_smooth) == 1


def test_smooth_outcome_sums_curves_and_ties_only_float_noise() -> None:
    assert smooth_outcome([0.02, -0.01]) == "faster"
    assert smooth_outcome([-0.02, 0.01]) == "slower"
    assert smooth_outcome([1e-9, -2e-9]) == "tied"
    assert smooth_outcome([3e-6]) == "faster"
    # Curves saved before smooth ranks have no smooth comparison.
    assert smooth_area_difference(_item("faster", 10, 8).deletion) is None


def _rank(scores: torch.Tensor, item: int) -> int:
    tied_before = (scores == scores[item]) & (torch.arange(len(scores)) < item)
    return int((scores > scores[item]).sum() + tied_before.sum()) + 1


def _item(outcome: str | None, area_e: float, area_r: float, paths: int = 2) -> ItemExplanation:
    start = 3
    ranks = [start] * paths if outcome == "no_reaction" else [start + 1] * paths
    return ItemExplanation(
        index=1, item_id="i1", title="t", rank=start, score=0.0, paths=[],
        deletion=DeletionCurve(start_rank=start, explanation_ranks=ranks[:paths],
                               random_ranks=[float(r) for r in ranks[:paths]],
                               random_orders=2, area_explanation=area_e, area_random=area_r,
                               faster=None if paths < 2 else outcome == "faster",
                               outcome=outcome),
        fidelity=Fidelity(explanation_paths=0, in_top_k=True, plus=0.0, minus=0.0))


def test_summary_compares_only_reacting_items_and_counts_the_rest() -> None:
    items = [_item("faster", 10, 8), _item("slower", 6, 7), _item("tied", 8, 8),
             _item("no_reaction", 6, 6), _item("too_few_paths", 3, 3, paths=1)]
    summary = summarize(items)
    assert summary.items_compared == 4 and summary.items_reacting == 3
    assert summary.items_no_reaction == 1 and summary.items_too_few_paths == 1
    assert summary.items_tied == 1
    assert summary.share_faster == pytest.approx(1 / 3)
    assert summary.user_faster is True            # 24 > 23 over the reacting items only
    assert user_outcome(summary, items) == "faster"
    flat = [_item("no_reaction", 6, 6), _item("too_few_paths", 3, 3, paths=1)]
    nothing = summarize(flat)
    assert nothing.share_faster is None and nothing.user_faster is None
    assert user_outcome(nothing, flat) == "no_reaction"
    # Curves saved before ``outcome`` existed are classified from their ranks.
    old = _item("no_reaction", 6, 6).model_copy(deep=True)
    old.deletion.outcome = None
    assert summarize([old]).items_no_reaction == 1


def test_counterfactual_rows_carry_the_unmodified_base_rank(
        explainer: Explainer, workspace: FusionWorkspace) -> None:
    for user_id in user_ids(workspace, 3):
        point = explainer.point(user_id)
        chains, nodes = reasoning_elements(point.prefix)
        session = [n for n, a in point.prefix.nodes(data=True) if a["kind"] == "session_item"]
        for removal in (Removal(chains=tuple(chains), nodes=tuple(nodes)),
                        Removal(nodes=tuple(session[:2]))):
            result = explainer.counterfactual(point, removal)
            for row in result.top_k:
                assert row.base_rank == _rank(point.base_scores, row.index)
                assert row.other_rank == _rank(point.fused_scores, row.index)
        top = explainer.top_k(point)
        assert [r.base_rank for r in top.base] == [r.rank for r in top.base]
        assert [r.base_rank for r in top.fused] == [r.other_rank for r in top.fused]
