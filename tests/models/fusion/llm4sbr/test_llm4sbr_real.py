"""LLM4SBR end to end on the real data, the real LLM (SmolLM2-135M) and the real encoder.

Two sampled ml-100k users, their last training, valid and test points: stage 1 asks the LLM
(a fresh knowledge base, so every question reaches it), localizes the answers
with all-MiniLM-L6-v2, and the strategy fits one epoch, evaluates and
explains through the workspace. Then the issue's check: removing the
interests (zeroing their branches) gives exactly the ranking that the model's
formula computes from the base views with zero interests, and the explanation
predicts it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.data import Dataset
from models.explain import Explainer
from models.fusion import create as create_fusion
from models.fusion.llm4sbr.inputs import InterestProvider
from models.fusion.llm4sbr.model import LLM4SBRFusion
from models.fusion.samples import VARIANTS, base_item_table
from models.fusion.strategy import Need
from models.fusion.workspace import FusionWorkspace
from reasoning.backend import open_backend
from reasoning.config import load_reasoning_config
from reasoning.interest_store import InterestStore, UserInterests
from reasoning.interests import InterestBuilder
from reasoning.kb import KnowledgeBase
from reasoning.localizer import open_localizer
from reasonrec.interests import interest_source
from tests.models.fusion_setup import small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[FusionWorkspace, list[UserInterests]]:
    tmp = tmp_path_factory.mktemp("llm4sbr")
    ws = small_workspace(ml100k, tmp / "runs", users=2, train_steps=1, epochs=1)
    config = load_reasoning_config(n_threads=1)
    localizer = open_localizer(ml100k, config)
    kb = KnowledgeBase(tmp / "kb.sqlite")
    builder = InterestBuilder(ml100k, open_backend(config), kb, localizer)
    store = InterestStore(tmp / "interests", builder.key)
    jobs = [(u.user_id, u.window, [p.step for p in u.points(1)]) for u in ws.user_graphs]
    summary = builder.build_all(jobs, store)
    kb.close()
    assert summary.users_built == 2 and summary.points == 6
    assert summary.llm_calls + summary.kb_hits == 12 and summary.llm_calls >= 9
    ws.providers[Need.LLM_INTERESTS] = InterestProvider(
        lambda: interest_source(ml100k, localizer, builder.key, store.load))
    return ws, [store.load(u) for u, _, _ in jobs]   # type: ignore[misc]


def test_stage_one_asks_the_llm_and_localizes_each_answer(
        built: tuple[FusionWorkspace, list[UserInterests]]) -> None:
    _, records = built
    for record in records:
        assert record.cost.llm_calls >= 4 and record.cost.tokens_in > 0
        for point in record.points:
            for interest in (point.long, point.short):
                assert interest.answer.strip()
                if interest.interest:   # a usable title: r = 5 items, weights summing to 1
                    assert 1 <= len(interest.items) <= 5
                    assert sum(w for _, w in interest.items) == pytest.approx(1.0, abs=1e-4)
                else:
                    assert interest.items == ()


def test_fits_evaluates_and_explains_its_interests(
        built: tuple[FusionWorkspace, list[UserInterests]], ml100k: Dataset) -> None:
    ws, records = built
    run = ws.fit("llm4sbr")
    assert isinstance(run.strategy, LLM4SBRFusion) and run.strategy.text_dim == 384
    assert ws.ranks(run, "test").shape == (2,)
    assert "inputs" in ws.run_fingerprint(VARIANTS["llm4sbr"])
    explanation = ws.explainer(run, k=5).explain(records[0].user)
    stored = records[0].at(explanation.point.step)
    assert stored is not None
    assert [(i.branch, i.text) for i in explanation.inputs] == [
        ("long", stored.long.interest), ("short", stored.short.interest)]
    items = [(i.item_id, i.weight) for i in explanation.inputs[0].items]
    assert items == [(item, pytest.approx(w)) for item, w in stored.long.items]
    assert {b for r in explanation.branch_effects for b in r.zeroed} == {"long", "short"}


def ranks_of(scores: torch.Tensor, items: list[int]) -> list[int]:
    """1-based ranks, ties to the lower index (as the metrics rank)."""
    index = torch.arange(len(scores))
    return [int((scores > scores[i]).sum() + ((scores == scores[i]) & (index < i)).sum()) + 1
            for i in items]


def test_removing_the_interests_gives_the_base_plus_zeros_ranking_the_explanation_predicts(
        built: tuple[FusionWorkspace, list[UserInterests]]) -> None:
    ws, records = built
    torch.manual_seed(0)   # random gates and projection: each interest moves scores
    table = base_item_table(ws.base.model)
    model = create_fusion("llm4sbr", ws.dataset.n_items, table.shape[1], item_init=table,
                          identity_init=False, text_dim=384).eval()
    chosen = VARIANTS["llm4sbr"]
    explainer = Explainer(ws.dataset, ws.base.model, model, chosen, ws.intents, ws.source,
                          ws.split.max_len, k=10, random_orders=2, max_paths=2,
                          extras=ws.extras(chosen))
    point = explainer.point(records[0].user)
    explanation = explainer.explain(point)
    sample = chosen.sample_inputs(point.user, point.step)

    def by_formula(zero: set[str]) -> torch.Tensor:
        """α = 1 + qᵀσ(view + h), H = W[local·α_short; global·α_long], h zero when removed."""
        with torch.no_grad():
            local = model.item_embedding.weight[sample["last"]][None]
            glob = point.e_base
            h = {name: (torch.zeros(1, table.shape[1]) if name in zero
                        else model.text_to_view(sample[name][None])) for name in ("long", "short")}
            alpha_long = 1 + torch.sigmoid(glob + h["long"]) @ model.gate_long.weight.T
            alpha_short = 1 + torch.sigmoid(local + h["short"]) @ model.gate_short.weight.T
            fused = torch.cat([local * alpha_short, glob * alpha_long], dim=-1)
            scores = (fused @ model.project.weight.T + model.project.bias) @ \
                model.item_embedding.weight.T
        return scores[0].masked_fill(point.masked, -torch.inf)

    top = [r.index for r in explanation.top_k.fused]
    assert torch.allclose(by_formula(set()), point.fused_scores, atol=1e-5)
    both = by_formula({"long", "short"})
    assert torch.allclose(both, explainer.strategy(point.e_base, model.collate([sample]),
                                                   zero=["long", "short"])[0]
                          .masked_fill(point.masked, -torch.inf), atol=1e-5)
    assert not torch.allclose(both, point.fused_scores)   # the interests change the ranking
    for shown in explanation.inputs:
        without = by_formula({shown.branch})
        assert [r.zeroed[shown.branch].rank_after for r in explanation.branch_effects] == \
            ranks_of(without, top)
        after_top = torch.argsort(-without, stable=True)[:10].tolist()
        assert {i.index for i in shown.left} == set(top) - set(after_top)
        assert {i.index for i in shown.entered} == set(after_top) - set(top)
        assert shown.target_rank_after == ranks_of(without, [point.target])[0]
