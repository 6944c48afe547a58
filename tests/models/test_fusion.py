"""Fusion strategies: registry, LLMRG and the control, branch zeroing, gradients, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.fusion import REGISTRY, create, fusion_class, register
from models.fusion.base import FusionStrategy
from models.fusion.control import SequenceGraphControl
from models.fusion.llmrg import LLMRGFusion
from models.fusion.train import FusionSample, score_samples, train_epoch
from models.graph_data import (GraphPair, IntentIndex, counterfactual_pair, reasoning_elements,
                               reasoning_pair, sequence_graph)
from reasoning.graph import prefix_graph
from tests.models.reasoning_graphs import INTENTS, ChainSpec, build_graph, small_graphs
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

N_ITEMS, D = 30, 8
INDEX = IntentIndex(INTENTS)


def pairs() -> list[GraphPair]:
    graphs = small_graphs()
    return [reasoning_pair(graphs["example"], INDEX),
            reasoning_pair(graphs["no_divergence"], INDEX),        # empty G_div
            reasoning_pair(graphs["repeat"], INDEX),
            reasoning_pair(graphs["example"], INDEX, 2),           # empty G_div
            reasoning_pair(graphs["single"], INDEX)]


def llmrg(seed: int = 0, **kwargs: object) -> LLMRGFusion:
    torch.manual_seed(seed)
    kwargs.setdefault("intent_vectors", torch.randn(len(INDEX), 6))
    return LLMRGFusion(N_ITEMS, D, **kwargs).eval()


def test_registry_resolves_and_guards_names() -> None:
    assert fusion_class("llmrg") is LLMRGFusion
    assert fusion_class("seqgraph") is SequenceGraphControl
    model = create("seqgraph", N_ITEMS, D, identity_init=False)
    assert isinstance(model, FusionStrategy) and model.branches == ("seq", "base")
    with pytest.raises(ValueError, match="llmrg, seqgraph"):
        fusion_class("nope")
    with pytest.raises(ValueError, match="already registered"):
        register("llmrg", "somewhere:Else")
    register("llmrg", REGISTRY["llmrg"])                       # same target: a no-op
    with pytest.raises(ValueError, match="module:Class"):
        register("x", "no_colon")


@torch.no_grad()
def test_identity_init_starts_at_the_base_model() -> None:
    items = torch.randn(N_ITEMS + 1, D)
    model = llmrg(item_init=items)
    e_base = torch.randn(len(pairs()), D)
    scores = model(e_base, model.pair_inputs(pairs()))
    assert scores.shape == (len(pairs()), N_ITEMS + 1)
    assert torch.allclose(scores, e_base @ items.T, atol=1e-5)
    with pytest.raises(ValueError, match="dim == base_dim"):
        LLMRGFusion(N_ITEMS, D, dim=D + 1)
    with pytest.raises(ValueError, match="item_init"):
        LLMRGFusion(N_ITEMS, D, item_init=torch.zeros(3, D))


@torch.no_grad()
def test_batched_scores_equal_per_sample_scores() -> None:
    model = llmrg(identity_init=False)
    e_base = torch.randn(len(pairs()), D)
    batched = model(e_base, model.pair_inputs(pairs()))
    for i, pair in enumerate(pairs()):
        single = model(e_base[i:i + 1], model.pair_inputs([pair]))
        assert torch.allclose(batched[i:i + 1], single, atol=1e-5)


@torch.no_grad()
def test_zeroing_a_branch_removes_exactly_its_term() -> None:
    model = llmrg(identity_init=False)
    e_base = torch.randn(len(pairs()), D)
    inputs = model.pair_inputs(pairs())
    reps = model.representations(e_base, inputs)
    items = model.item_embedding.weight
    full = model(e_base, inputs)
    start = 0
    for branch in model.branches:
        width = reps[branch].shape[1]
        term = reps[branch] @ model.project.weight[:, start:start + width].T @ items.T
        start += width
        assert torch.allclose(full - model(e_base, inputs, zero=[branch]), term, atol=1e-5)
    # Branch effects add up: the fusion is linear in the branch vectors.
    both = model(e_base, inputs, zero=["ori", "div"])
    assert torch.allclose(full - model(e_base, inputs, zero=["ori"])
                          - model(e_base, inputs, zero=["div"]) + both,
                          torch.zeros_like(full), atol=1e-4)
    # An empty divergent graph has nothing to zero.
    empty_rows = [i for i, p in enumerate(pairs()) if p.div.num_nodes == 0]
    assert empty_rows and torch.equal(model(e_base, inputs, zero=["div"])[empty_rows],
                                      full[empty_rows])
    with pytest.raises(ValueError, match="unknown branch"):
        model(e_base, inputs, zero=["E_ori"])


def test_gradients_flow_from_random_and_from_identity_init() -> None:
    targets = torch.tensor([20, 6, 1, 2, 12])
    e_base = torch.randn(len(targets), D)
    model = llmrg(identity_init=False).train()
    model.loss(model(e_base, model.pair_inputs(pairs())), targets).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # From the base model's starting point the encoders learn after one step.
    model = llmrg(identity_init=True).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(2):
        optimizer.zero_grad()
        model.loss(model(e_base, model.pair_inputs(pairs())), targets).backward()
        conv_grad = model.encoders["div"].conv.weight_in.grad.abs().sum()
        assert (conv_grad == 0) if step == 0 else (conv_grad > 0)
        optimizer.step()


@torch.no_grad()
def test_llmrg_without_reasoning_equals_llmrg_on_the_control_input() -> None:
    model = llmrg(identity_init=False)
    e_base = torch.randn(1, D)
    for graph in small_graphs().values():
        step = len(graph.graph["window"]) - 1
        chains, nodes = reasoning_elements(prefix_graph(graph, step))
        stripped = counterfactual_pair(graph, INDEX, step, chains=chains, nodes=nodes)
        control_input = GraphPair(rea=sequence_graph(graph.graph["window"]),
                                  div=sequence_graph([]), session=graph.graph["window"])
        assert torch.equal(model(e_base, model.pair_inputs([stripped])),
                           model(e_base, model.pair_inputs([control_input])))
        full = model(e_base, model.pair_inputs([reasoning_pair(graph, INDEX)]))
        assert not torch.allclose(full, model(e_base, model.pair_inputs([stripped])))


@torch.no_grad()
def test_control_encodes_the_plain_session_graph() -> None:
    torch.manual_seed(0)
    items = torch.randn(N_ITEMS + 1, D)
    windows = [[5, 9, 2], [4], [6, 1, 6, 2]]
    e_base = torch.randn(len(windows), D)
    control = SequenceGraphControl(N_ITEMS, D, item_init=items).eval()
    assert torch.allclose(control(e_base, control.window_inputs(windows)), e_base @ items.T,
                          atol=1e-5)
    control = SequenceGraphControl(N_ITEMS, D, identity_init=False).eval()
    batched = control(e_base, control.window_inputs(windows))
    for i, window in enumerate(windows):
        single = control(e_base[i:i + 1], control.window_inputs([window]))
        assert torch.allclose(batched[i:i + 1], single, atol=1e-5)
    without = control(e_base, control.window_inputs(windows), zero=["seq"])
    assert not torch.allclose(batched, without)


def synthetic_samples(n: int, seed: int) -> list[FusionSample]:
    """The next item is the divergent candidate of the chain end.

    Only G_div carries the answer (E_base is one vector for all samples; the
    windows are unrelated to the targets), so training must learn to read it.
    """
    rng = np.random.default_rng(seed)
    e_base = torch.from_numpy(rng.normal(size=D)).float()
    samples = []
    for _ in range(n):
        window = [int(i) for i in rng.choice(np.arange(1, 16), size=4, replace=False)]
        target = int(rng.integers(16, N_ITEMS + 1))
        graph = build_graph(window, [ChainSpec("c1", [0, 1, 2, 3], INTENTS[0], 0.9, "verified",
                                               diverge=[(INTENTS[1], [(target, 0.9)])])])
        samples.append(FusionSample(e_base=e_base,
                                    inputs=LLMRGFusion.sample_inputs(reasoning_pair(graph, INDEX)),
                                    target=target))
    return samples


def test_train_epoch_learns_from_the_divergent_graph() -> None:
    samples = synthetic_samples(48, seed=1)
    model = llmrg(identity_init=True, dim=D)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    rng = np.random.default_rng(0)
    losses = [train_epoch(model, samples, optimizer, batch_size=16, rng=rng) for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0], losses
    scores = score_samples(model, samples, batch_size=20)
    assert scores.shape == (len(samples), N_ITEMS + 1) and torch.isinf(scores[:, 0]).all()
    targets = torch.tensor([s.target for s in samples])

    def hit_rate(s: torch.Tensor) -> float:
        return float((s.topk(3).indices == targets[:, None]).any(1).float().mean())

    assert hit_rate(scores) > 0.8
    assert hit_rate(score_samples(model, samples, zero=["div"])) < 0.5
    with pytest.raises(ValueError, match="no samples"):
        train_epoch(model, [], optimizer)
