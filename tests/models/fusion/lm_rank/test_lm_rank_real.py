"""LM ranking end to end on real ml-100k users and the real SmolLM2-135M (small: 3 users, N=5).

Builds the sample's LM scores with the real LLM (resumable store), fits both
rows (λ chosen on validation), evaluates, reloads, explains through the
workspace, and checks the leave-one-out explanation against the stored score.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Dataset
from models.fusion.fit import load_fusion_run, rank_samples
from models.fusion.inputs import MissingInputsError
from models.fusion.lm_rank.inputs import LMScoreProvider, top_candidates
from models.fusion.samples import VARIANTS
from models.fusion.strategy import Need
from models.fusion.workspace import FusionWorkspace
from reasoning.backend import LLMBackend
from reasoning.lm_scores import LMScoreStore
from reasonrec.lm_scores import build_lm_scores, history_effects, score_key
from tests.models.fusion_setup import small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.slow
TOP_N = 5


@pytest.fixture(scope="module")
def backend() -> Iterator[LLMBackend]:
    from reasoning.config import load_reasoning_config
    from reasoning.llama_backend import shared_llama_backend

    yield shared_llama_backend(load_reasoning_config({"n_threads": 1}))


@pytest.fixture(scope="module")
def scored(ml100k: Dataset, backend: LLMBackend,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[FusionWorkspace, Path]:
    root = tmp_path_factory.mktemp("lm-rank")
    workspace = small_workspace(ml100k, root / "runs", users=3, epochs=1)
    store = root / "lm_scores.sqlite"
    first = build_lm_scores(workspace, backend, store, top_n=TOP_N)
    assert first.points_scored == 6 and first.points_skipped == 0   # valid + test per user
    assert first.tokens > 0 and first.llm_calls == 6
    again = build_lm_scores(workspace, backend, store, top_n=TOP_N)   # resumes: nothing to do
    assert again.points_scored == 0 and again.points_skipped == 6
    key = score_key(ml100k.name, workspace.base, backend.model_identity, top_n=TOP_N)
    workspace.providers[Need.LM_SCORES] = LMScoreProvider(key, store)
    return workspace, store


@pytest.mark.parametrize("name", ["lm-rerank", "lm-only"])
def test_lm_rows_fit_evaluate_reload_and_explain(scored: tuple[FusionWorkspace, Path],
                                                 name: str) -> None:
    workspace, _ = scored
    run = workspace.fit(name)
    weights = run.strategy.weights
    assert (len(weights) > 1) == (name == "lm-rerank")
    assert 0 <= run.report.best_epoch < len(weights)
    # a trained choice (selection "trained"): λ = 0, the base model, is only the reported start
    assert (run.report.best_epoch >= 1) == (name == "lm-rerank")
    # λ is a float32 parameter: 0.15 reads back as 0.15000000596
    assert run.strategy.lm_weight == pytest.approx(
        weights[run.report.best_epoch] if name == "lm-rerank" else 1.0)
    ranks = workspace.ranks(run, "test")
    base = workspace.base_ranks("test")
    assert ranks.shape == base.shape == (3,)
    # only the base top-N is reordered: a target outside it keeps its base rank
    assert np.array_equal(ranks[base >= TOP_N], base[base >= TOP_N])
    assert (ranks[base < TOP_N] < TOP_N).all()
    loaded = load_fusion_run(run.directory)
    assert loaded.strategy.lm_weight == run.strategy.lm_weight
    assert np.array_equal(rank_samples(loaded.strategy, workspace.samples(name, "test")), ranks)
    assert workspace.fused(name).directory == run.directory
    explainer = workspace.explainer(loaded, k=5)
    user = workspace.user_graphs[0]
    explanation = explainer.explain(user.user_id)
    assert explanation.provenance.fusion_variant == name
    assert len(explanation.top_k.fused) == 5
    # the fused top-5 is the base top-5 (seen items unmasked there too) in the LM's order
    lm_effect = {r.item_id: r.zeroed["lm"] for r in explanation.branch_effects}
    assert set(lm_effect) == {r.item_id for r in explanation.top_k.fused}


def test_leave_one_out_explains_the_stored_score(scored: tuple[FusionWorkspace, Path],
                                                 backend: LLMBackend) -> None:
    workspace, store = scored
    provider = workspace.providers[Need.LM_SCORES]
    db = LMScoreStore(store)
    try:
        stored = {(p.user, p.step): p for p in db.points(provider.key)}
    finally:
        db.close()
    user = workspace.user_graphs[0]
    step = user.steps - 1
    point = stored[(user.user_id, step)]
    catalogue = workspace.dataset.catalogue
    history = [catalogue[int(i)] for i in user.base_input(step)[-10:]]
    evidence = history_effects(backend, history, [catalogue[i] for i in point.candidates[:2]])
    assert [e.item for e in evidence] == list(point.candidates[:2])
    for found, stored_score in zip(evidence, point.scores()[:2]):
        assert found.score == pytest.approx(stored_score, abs=1e-4)   # the stored score
        effects = [e.effect for e in found.effects]
        assert len(effects) == len(history) and effects == sorted(effects, reverse=True)
        assert any(abs(e) > 1e-6 for e in effects)


def test_scores_of_another_base_are_not_reused(scored: tuple[FusionWorkspace, Path]) -> None:
    workspace, store = scored
    key = workspace.providers[Need.LM_SCORES].key
    other = LMScoreProvider(key.__class__(**{**key.__dict__, "base_run": "gru4rec/other"}),
                            store)
    with pytest.raises(MissingInputsError, match="reasonrec fusion lm-scores"):
        other.provide(workspace.user_graphs, workspace.points, workspace.item_table)
    # the bench's cost column reads the store: tokens per sampled user
    from models.bench_fusion_extras import llm_cost

    db = LMScoreStore(store)
    try:
        tokens = sum(p.tokens for p in db.points(key))
    finally:
        db.close()
    cost = llm_cost(workspace, VARIANTS["lm-rerank"])
    assert cost["tokens_per_user"] == pytest.approx(tokens / 3) and tokens > 0
    assert cost["llm_calls_per_user"] == 2   # one scoring call per valid and test point
    # the stored candidates are the base model's top-N at each scored point
    test = workspace.points.indices("test")
    tops = top_candidates(workspace.points.e_base[test], workspace.item_table, TOP_N)
    assert tops.shape == (3, TOP_N)
    assert torch.equal(tops[:, 0], torch.argmax(
        (workspace.points.e_base[test] @ workspace.item_table.T)[:, 1:], dim=1) + 1)
