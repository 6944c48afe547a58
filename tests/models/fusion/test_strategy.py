"""The pluggable strategy interface: registry, variants as data, hooks, input keys."""

from __future__ import annotations

import pytest
import torch

from models.fusion import REGISTRY, StrategyKind, fusion_class, register, strategy_spec
from models.fusion.base import FusionStrategy
from models.fusion.control import SequenceGraphControl
from models.fusion.registry import VARIANT_NAMES, VARIANTS, VariantSpec, strategy_kind
from models.fusion.samples import VARIANTS as BOUND
from models.fusion.samples import bind
from models.fusion.settings import FusionSettings
from models.fusion.strategy import ModelInput, Need, RemovableKind, StrategySpec
from models.fusion.train import FusionSample, train_epoch
from models.graph_data import GraphOptions, IntentIndex, reasoning_pair, sequence_graph
from tests.models.reasoning_graphs import INTENTS, small_graphs
from tests.models.single_thread import one_torch_thread  # noqa: F401  (autouse fixture)


def test_every_kind_is_registered_once_with_a_matching_spec() -> None:
    assert set(REGISTRY) == {k.value for k in StrategyKind}
    for kind in StrategyKind:
        spec = strategy_spec(kind)
        assert isinstance(spec, StrategySpec) and spec.kind is kind
        assert issubclass(spec.model_class(), FusionStrategy)
        assert spec.model_class().name == kind.value      # saved runs name the kind
        assert Need.SESSION in spec.needs and spec.removable <= set(RemovableKind)
        assert fusion_class(kind.value) is spec.model_class()
    assert strategy_kind("llmrg") is StrategyKind.LLMRG
    with pytest.raises(ValueError, match="unknown fusion strategy 'gpt'; choose one of: llmrg"):
        strategy_spec("gpt")
    with pytest.raises(ValueError, match="unknown fusion strategy 'newkind'"):
        register("newkind", "somewhere:Spec")          # a new kind goes into the enum first
    assert "newkind" not in REGISTRY


def test_variants_are_data_bound_to_their_strategy() -> None:
    assert VARIANT_NAMES == tuple(v.name for v in VARIANTS) == tuple(BOUND)
    # settings validate against the same names, without importing a strategy
    assert FusionSettings(variant="llmrg-no-div").variant == "llmrg-no-div"
    assert BOUND["llmrg"].options == GraphOptions()
    assert BOUND["llmrg-no-div"].options == GraphOptions(divergent=False)
    assert BOUND["llmrg-no-verify"].options == GraphOptions(verification=False)
    assert BOUND["seqgraph"].options is None
    assert BOUND["seqgraph"].removable == {RemovableKind.SESSION_ITEM}
    assert BOUND["llmrg"].removable == set(RemovableKind)
    assert Need.INTENT_TABLE in BOUND["llmrg"].needs
    assert Need.INTENT_TABLE not in BOUND["seqgraph"].needs
    with pytest.raises(ValueError, match="variant 'x': unknown llmrg option.*'divergnt'"):
        bind(VariantSpec("x", StrategyKind.LLMRG, {"divergnt": False}))
    with pytest.raises(ValueError, match="variant 'y': the sequence-graph control takes no"):
        bind(VariantSpec("y", StrategyKind.SEQGRAPH, {"steps": 2}))


def test_input_key_is_equal_exactly_for_equal_model_inputs() -> None:
    graph = small_graphs()["example"]
    index = IntentIndex(INTENTS)
    a = reasoning_pair(graph, index)
    b = reasoning_pair(graph, index)
    key = ModelInput(tuple(a.session), {"ori": a.rea, "div": a.div}).key()
    assert key == ModelInput(tuple(b.session), {"ori": b.rea, "div": b.div}).key()
    # another verification weighting: same nodes, other edge weights -> another key
    c = reasoning_pair(graph, index, options=GraphOptions(verification=False))
    assert not torch.equal(a.rea.edge_weight, c.rea.edge_weight)
    assert key != ModelInput(tuple(c.session), {"ori": c.rea, "div": c.div}).key()
    # the same tensors under another session (E_base differs) -> another key
    assert key != ModelInput(tuple(a.session[1:]), {"ori": a.rea, "div": a.div}).key()
    plain = ModelInput((3, 4), {"seq": sequence_graph([3, 4])}).key()
    assert plain == ModelInput((3, 4), {"seq": sequence_graph([3, 4])}).key()
    assert plain != ModelInput((3, 4), {"seq": sequence_graph([4, 3])}).key()


class _ExtraLoss(SequenceGraphControl):
    """The control with an extra training term (as an alignment loss would be)."""

    def training_loss(self, e_base, inputs, targets):  # type: ignore[no-untyped-def]
        return super().training_loss(e_base, inputs, targets) + 10.0


def test_train_epoch_minimizes_the_strategy_training_loss() -> None:
    torch.manual_seed(0)
    samples = [FusionSample(torch.randn(8), {"seq": sequence_graph(w)}, t)
               for w, t in (([1, 2, 3], 4), ([5, 6], 7), ([2, 9, 2], 3))]

    def epoch(cls: type[SequenceGraphControl]) -> float:
        torch.manual_seed(1)
        model = cls(12, 8, identity_init=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)   # lr 0: the loss is the start's
        return train_epoch(model, samples, optimizer, batch_size=8)

    assert epoch(_ExtraLoss) == pytest.approx(epoch(SequenceGraphControl) + 10.0, abs=1e-5)


def test_freeze_hooks_keep_the_base_block_and_items_fixed() -> None:
    torch.manual_seed(0)
    items = torch.randn(13, 8)
    model = SequenceGraphControl(12, 8, item_init=items)
    settings = FusionSettings(freeze_items=True, freeze_base=True)
    model.freeze(settings)
    assert not model.item_embedding.weight.requires_grad and not model.project.bias.requires_grad
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.attach(optimizer, settings)
    samples = [FusionSample(torch.randn(8), {"seq": sequence_graph([1, 2, 3])}, 4)] * 4
    train_epoch(model, samples, optimizer, batch_size=2)
    train_epoch(model, samples, optimizer, batch_size=2)
    assert torch.equal(model.project.weight[:, -8:], torch.eye(8))
    assert torch.equal(model.item_embedding.weight, items)
    assert model.project.weight[:, :-8].abs().sum() > 0      # the graph block did train
