"""Every registered variant fits, evaluates, saves, reloads and explains through the interface.

Real ml-100k users with the LLM-free genre graphs, on a one-epoch base model
(``tests.models.fusion_setup``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Dataset
from models.explain import NOTHING, Explainer
from models.fusion import create as create_fusion
from models.fusion.fit import load_fusion_run, rank_samples
from models.fusion.samples import VARIANTS, base_item_table, base_vectors
from models.fusion.strategy import Need
from models.fusion.workspace import FusionWorkspace
from models.graph_data import reasoning_elements, sequence_graph
from tests.models.fusion_setup import small_workspace
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def workspace(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> FusionWorkspace:
    return small_workspace(ml100k, tmp_path_factory.mktemp("runs"), users=12, epochs=1)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_fits_evaluates_reloads_and_explains(workspace: FusionWorkspace,
                                                     name: str) -> None:
    run = workspace.fit(name)
    assert run.meta["strategy"] == VARIANTS[name].strategy.value
    assert (run.intents is not None) == (Need.INTENT_TABLE in VARIANTS[name].needs)
    ranks = workspace.ranks(run, "test")
    assert ranks.shape == (12,)
    loaded = load_fusion_run(run.directory)
    assert type(loaded.strategy) is type(run.strategy)
    assert np.array_equal(rank_samples(loaded.strategy, workspace.samples(name, "test")), ranks)
    assert workspace.fused(name).directory == run.directory     # found by its fingerprint
    explainer = workspace.explainer(loaded, k=5)
    user = workspace.user_graphs[0]
    explanation = explainer.explain(user.user_id)
    assert explanation.provenance.fusion_variant == name
    assert len(explanation.top_k.fused) == 5 and len(explanation.items) == 5
    # the explainer scores the test point as the evaluation ranks it
    assert explanation.point.target_rank_fused >= 1
    assert {b for r in explanation.branch_effects for b in r.zeroed} == \
        set(loaded.strategy.branches) - {"base"}


@pytest.fixture(scope="module")
def control_explainer(workspace: FusionWorkspace) -> Explainer:
    """The control with random (not identity) weights: its graph branch moves scores."""
    torch.manual_seed(0)
    table = base_item_table(workspace.base.model)
    model = create_fusion("seqgraph", workspace.dataset.n_items, table.shape[1],
                          item_init=table, identity_init=False).eval()
    return Explainer(workspace.dataset, workspace.base.model, model, VARIANTS["seqgraph"],
                     workspace.intents, workspace.source, workspace.split.max_len, k=10,
                     random_orders=3, max_paths=4)


def test_control_counterfactuals_read_only_the_session(control_explainer: Explainer,
                                                       workspace: FusionWorkspace) -> None:
    explainer = control_explainer
    for user in workspace.user_graphs[:3]:
        point = explainer.point(user.user_id)
        # the control never reads chains, intents or candidates: removing them all
        # leaves its scores exactly as they were
        chains, nodes = reasoning_elements(point.prefix)
        everything = explainer.removal(point, chains=chains, nodes=nodes)
        assert torch.equal(explainer.scores(point, [everything])[0], point.fused_scores)
        # removing a session item: the plain session graph and E_base of what is left
        item_id = workspace.dataset.catalogue[point.user.window[2]].item_id
        removal = explainer.removal(point, items=[item_id])
        after = explainer.scores(point, [removal])[0]
        left = [i for i in point.user.window[: point.step + 1]
                if workspace.dataset.catalogue[i].item_id != item_id]
        with torch.no_grad():
            e_base = base_vectors(explainer.base, [point.user.base_input(point.step, left)],
                                  explainer.max_len)
            expected = explainer.strategy(e_base, explainer.strategy.collate(
                [{"seq": sequence_graph(left)}]))[0]
        expected[0] = -torch.inf
        expected = expected.masked_fill(point.masked, -torch.inf)
        assert torch.allclose(after, expected, atol=1e-5)
        assert not torch.allclose(after, point.fused_scores)
        # the unchanged input is the training tensorizer's input at that step
        unchanged = explainer.model_input(point, NOTHING)
        assert unchanged.key() == explainer.model_input(point, everything).key()
        assert list(unchanged.session) == point.user.window[: point.step + 1]


def test_a_missing_input_is_named_before_any_training(workspace: FusionWorkspace) -> None:
    class NeedsLMScores:
        name = "lm-rerank"
        needs = frozenset({Need.SESSION, Need.LM_SCORES})

    provider = workspace.providers.pop(Need.LM_SCORES)   # the stand-in small_workspace has
    try:
        with pytest.raises(ValueError, match="lm-rerank needs LM scores, which this workspace "
                           "has no provider for"):
            workspace.context(NeedsLMScores())   # type: ignore[arg-type]
    finally:
        workspace.providers[Need.LM_SCORES] = provider


def test_a_provided_input_reaches_the_tensorizer_and_the_fingerprint(
        workspace: FusionWorkspace) -> None:
    """A provider's per-user inputs land in ``UserGraph.extras`` of the variant that reads
    them, and its identity joins that variant's run fingerprint only."""
    from models.fusion.samples import Variant, fusion_samples

    seen: list[object] = []

    class Provider:
        need = Need.LM_SCORES

        def identity(self) -> str:
            return "scores-v1"

        def provide(self, users, points, item_table):   # noqa: ANN001, ANN202
            return {u.user_id: {"user": u.user_id, "rows": item_table.shape[0]} for u in users}

    class Reader(Variant):
        @property
        def needs(self) -> frozenset[Need]:
            return super().needs | {Need.LM_SCORES}

        def sample_inputs(self, user, step):   # noqa: ANN001, ANN202
            seen.append(user.extras[Need.LM_SCORES])
            return super().sample_inputs(user, step)

    workspace.providers[Need.LM_SCORES] = Provider()
    workspace._extras.pop(Need.LM_SCORES, None)   # the stand-in's, read by the lm rows above
    control = VARIANTS["seqgraph"]
    reader = Reader("lm-reader", control.strategy, control.options, "reads LM scores")
    samples = fusion_samples(workspace.points, reader, "test", workspace.extras(reader))
    assert len(samples) == len(workspace.user_graphs)
    assert [s["user"] for s in seen] == [u.user_id for u in workspace.user_graphs]   # type: ignore[index]
    assert workspace.run_fingerprint(reader)["inputs"] == {"LM scores": "scores-v1"}
    assert "inputs" not in workspace.run_fingerprint(control)
