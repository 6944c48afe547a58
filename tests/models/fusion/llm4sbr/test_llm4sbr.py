"""LLM4SBR stage 2: losses against hand-computed values, gating shapes, identity start,
interest zeroing, typed options, and missing interests named (not faked)."""

from __future__ import annotations

import math

import pytest
import torch

from models.fusion import strategy_spec
from models.fusion.inputs import MissingInputsError
from models.fusion.llm4sbr import LLM4SBROptions, LLM4SBRSpec
from models.fusion.llm4sbr.losses import align_uniform, alignment, uniformity
from models.fusion.llm4sbr.model import LLM4SBRFusion
from models.fusion.settings import FusionSettings
from models.fusion.strategy import Need, StrategyContext
from models.fusion.train import FusionSample, train_epoch
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)

N_ITEMS, D, TEXT = 20, 6, 5


def test_alignment_and_uniformity_match_hand_computation() -> None:
    x = torch.tensor([[3.0, 0.0], [0.0, 2.0]])          # normalized: e1, e2
    y = torch.tensor([[1.0, 0.0], [5.0, 0.0]])          # normalized: e1, e1
    # rows: |e1 - e1|^2 = 0, |e2 - e1|^2 = 2 -> mean 1
    assert float(alignment(x, y)) == pytest.approx(1.0)
    # one pair at squared distance 2: log exp(-4) = -4; y's pair coincides: log exp(0) = 0
    assert float(uniformity(x)) == pytest.approx(-4.0)
    assert float(uniformity(y)) == pytest.approx(0.0, abs=1e-6)
    assert float(align_uniform(x, y)) == pytest.approx(1.0 + (-4.0 + 0.0) / 2)
    # three points e1, e2, -e1: squared distances 2, 4, 2
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-2.0, 0.0]])
    expected = math.log((2 * math.exp(-4) + math.exp(-8)) / 3)
    assert float(uniformity(z)) == pytest.approx(expected, rel=1e-6)
    assert float(uniformity(z[:1])) == 0.0               # one row: no pair


def model(seed: int = 0, **kwargs: object) -> LLM4SBRFusion:
    torch.manual_seed(seed)
    return LLM4SBRFusion(N_ITEMS, D, text_dim=TEXT, **kwargs)


def batch(b: int = 4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(1)
    samples = [{"last": int(i), "long": torch.randn(TEXT), "short": torch.randn(TEXT)}
               for i in torch.randint(1, N_ITEMS + 1, (b,))]
    return torch.randn(b, D), model().collate(samples)


@torch.no_grad()
def test_gating_shapes_and_identity_start() -> None:
    e_base, inputs = batch()
    m = model().eval()
    assert inputs["last"].shape == (4,) and inputs["long"].shape == (4, TEXT)
    views = m.views(e_base, inputs)
    assert {k: tuple(v.shape) for k, v in views.items()} == {
        "local": (4, D), "global": (4, D), "long": (4, D), "short": (4, D)}
    alpha_long, alpha_short = m.gates(views)
    assert alpha_long.shape == alpha_short.shape == (4, 1)
    assert torch.equal(alpha_long, torch.ones(4, 1))      # q = 0: the gates start open
    scores = m(e_base, inputs)
    assert scores.shape == (4, N_ITEMS + 1)
    assert torch.allclose(scores, e_base @ m.item_embedding.weight.T, atol=1e-6)
    random = model(identity_init=False).eval()
    assert not torch.allclose(random(e_base, inputs), e_base @ random.item_embedding.weight.T)


@torch.no_grad()
def test_zeroing_an_interest_equals_a_zero_projected_interest() -> None:
    e_base, inputs = batch()
    m = model(identity_init=False).eval()
    views = m.views(e_base, inputs)
    by_hand = {**views, "long": torch.zeros(4, D)}
    assert torch.allclose(m(e_base, inputs, zero=["long"]),
                          m.fuse(by_hand) @ m.item_embedding.weight.T)
    assert not torch.allclose(m(e_base, inputs, zero=["long"]), m(e_base, inputs))
    with pytest.raises(ValueError, match="unknown branch"):
        m(e_base, inputs, zero=["ori"])


@torch.no_grad()
def test_training_loss_adds_tau_times_alignment_and_uniformity() -> None:
    e_base, inputs = batch()
    targets = torch.tensor([1, 2, 3, 4])
    m = model(identity_init=False, tau=0.1)
    views = m.views(e_base, inputs)
    ce = m.loss(m(e_base, inputs), targets)
    aux = align_uniform(views["global"], views["long"]) + align_uniform(views["local"],
                                                                      views["short"])
    assert float(m.training_loss(e_base, inputs, targets)) == pytest.approx(
        float(ce + 0.1 * aux), rel=1e-6)
    ablation = model(identity_init=False, align=False)
    assert float(ablation.training_loss(e_base, inputs, targets)) == pytest.approx(
        float(ablation.loss(ablation(e_base, inputs), targets)), rel=1e-6)


def test_training_moves_the_gates_and_projection_with_frozen_items() -> None:
    e_base, inputs = batch(8)
    samples = [FusionSample(e_base[i], {k: v[i] for k, v in inputs.items()}, 1 + i % 5)
               for i in range(8)]
    m = model()
    items = m.item_embedding.weight.detach().clone()
    m.freeze(FusionSettings(freeze_items=True))
    optimizer = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.05)
    losses = [train_epoch(m, samples, optimizer, batch_size=4) for _ in range(5)]
    assert losses[-1] < losses[0]
    assert m.gate_long.weight.abs().sum() > 0 and m.text_to_view.weight.grad is not None
    assert torch.equal(m.item_embedding.weight, items)


def test_registered_options_typed_and_missing_interests_named() -> None:
    spec = strategy_spec("llm4sbr")
    assert isinstance(spec, LLM4SBRSpec) and Need.LLM_INTERESTS in spec.needs
    assert spec.parse_options({"align": False}) == LLM4SBROptions(align=False, tau=0.1)
    with pytest.raises(ValueError, match="unknown llm4sbr option"):
        spec.parse_options({"alignment": False})
    with pytest.raises(ValueError, match="align must be true or false"):
        spec.parse_options({"align": "no"})
    with pytest.raises(ValueError, match="tau must be a number"):
        spec.parse_options({"tau": -1})
    with pytest.raises(MissingInputsError, match="reasonrec fusion interests"):
        spec.model_kwargs(StrategyContext(None, None, 1), LLM4SBROptions())   # type: ignore[arg-type]
