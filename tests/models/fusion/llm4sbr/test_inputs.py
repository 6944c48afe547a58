"""LLM4SBR's inputs, unit tests: h = Σ w · e_item, the provider's checks and the tensorizer's
shapes (stored interests written by hand; the real LLM's are in test_llm4sbr_real.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from models.fusion.inputs import MissingInputsError
from models.fusion.llm4sbr import LLM4SBROptions, LLM4SBRSpec
from models.fusion.llm4sbr.inputs import (Interest, InterestProvider, InterestSource,
                                          StoredInterests, interest_vector)
from models.fusion.llm4sbr.model import LLM4SBRFusion
from models.fusion.samples import Point, PointSet, UserGraph
from models.fusion.strategy import Need, StrategyContext
from models.graph_data import IntentIndex

TEXT_DIM = 4
VECTORS = np.vstack([np.zeros((1, TEXT_DIM)), np.eye(TEXT_DIM) * 2.0]).astype(np.float32)


def test_interest_vector_is_the_weighted_sum_of_item_vectors() -> None:
    h = interest_vector(((1, 0.75), (3, 0.25)), VECTORS)
    assert h.shape == (TEXT_DIM,) and h.dtype == torch.float32
    assert torch.allclose(h, torch.tensor([1.5, 0.0, 0.5, 0.0]))
    assert torch.equal(interest_vector((), VECTORS), torch.zeros(TEXT_DIM))


def user(user_id: str, window: list[int]) -> UserGraph:
    graph = nx.DiGraph(window=window)   # only the window is read here
    history = np.asarray([*window, 4], dtype=np.int64)
    return UserGraph(0, user_id, history, graph, 0, IntentIndex([]))


def stored(window: list[int], steps: range) -> StoredInterests:
    long, short = Interest("Alien", "Alien (1979)", ((1, 1.0),)), Interest("", "??", ())
    return StoredInterests(tuple(window), {s: (long, short) for s in steps},
                           {"llm_calls": 4.0, "tokens": 800.0, "llm_seconds": 2.0})


def provider(records: dict[str, StoredInterests]) -> InterestProvider:
    return InterestProvider(lambda: InterestSource("test-key", "test", records.get, VECTORS,
                                                   "`reasonrec fusion interests`"))


def points(users: list[UserGraph]) -> PointSet:
    chosen = [Point(u, s, u.role(s), u.target(s)) for u in users for s in (1, 2)]
    return PointSet(users, chosen, torch.zeros(len(chosen), 3))


def test_provider_gives_vectors_per_step_and_names_what_is_missing() -> None:
    a, b = user("a", [1, 2, 3]), user("b", [2, 3, 1])
    both = provider({"a": stored([1, 2, 3], range(3)), "b": stored([2, 3, 1], range(3))})
    with pytest.raises(RuntimeError, match="once provide"):
        both.cost()
    found = both.provide([a, b], points([a, b]), torch.zeros(5, 3))
    assert both.cost() == {"llm_calls": 4.0, "tokens": 800.0, "llm_seconds": 2.0}
    assert set(found) == {"a", "b"} and set(found["a"]) == {0, 1, 2}
    assert torch.equal(found["a"][2].long_vector, torch.tensor([2.0, 0, 0, 0]))
    assert torch.equal(found["a"][2].short_vector, torch.zeros(TEXT_DIM))   # no title: zero
    # a user without interests, one built for another window, one missing a step
    for records in ({"a": stored([1, 2, 3], range(3))},
                    {"a": stored([1, 2, 3], range(3)), "b": stored([3, 2, 1], range(3))},
                    {"a": stored([1, 2, 3], range(3)), "b": stored([2, 3, 1], range(2))}):
        with pytest.raises(MissingInputsError, match=r"1 of 2 sampled users .* \(e\.g\. b\); "
                                                     r"build them with `reasonrec fusion"):
            provider(records).provide([a, b], points([a, b]), torch.zeros(5, 3))
    assert provider({}).identity() == "llm4sbr-interests:test-key"


def test_tensorizer_and_constructor_shapes() -> None:
    a = user("a", [1, 2, 3])
    interests = provider({"a": stored([1, 2, 3], range(3))}).provide([a], points([a]),
                                                                     torch.zeros(5, 3))
    a.extras = {Need.LLM_INTERESTS: interests["a"]}
    spec = LLM4SBRSpec()
    sample = spec.sample_inputs(a, 1, LLM4SBROptions())
    assert sample["last"] == 2 and sample["long"].shape == (TEXT_DIM,)
    kwargs = spec.model_kwargs(StrategyContext(IntentIndex([]), None, 1,
                                               {Need.LLM_INTERESTS: interests}),
                               LLM4SBROptions(align=False))
    assert kwargs == {"text_dim": TEXT_DIM, "tau": 0.1, "align": False}
    model = LLM4SBRFusion(4, 3, item_init=None, **kwargs)
    batch = model.collate([sample, spec.sample_inputs(a, 2, LLM4SBROptions())])
    assert batch["last"].shape == (2,) and batch["short"].shape == (2, TEXT_DIM)
    assert model(torch.zeros(2, 3), batch).shape == (2, 5)
    notes = spec.describe_inputs(a, 2, LLM4SBROptions())
    assert [(n.branch, n.text, n.items) for n in notes] == [("long", "Alien", ((1, 1.0),)),
                                                            ("short", "", ())]
    with pytest.raises(MissingInputsError, match="no LLM4SBR interests at window step 5"):
        spec.sample_inputs(a, 5, LLM4SBROptions())
