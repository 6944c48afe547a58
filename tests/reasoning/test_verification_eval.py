"""Integration: verification scores real chains above corrupted ones (real model, real chains).

The chains are the first ten with two to four items in the shipped graph
bundle (built by the default model on ml-100k); each is also scored with one
item swapped for a catalogue item of other genres.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources

import pytest

from models.data import Dataset
from reasoning.backend import LLMBackend
from reasoning.verification_eval import ChainSample, evaluate_verification
from reasoning.verify import VerifySetup, popularity_ranks, training_popularity
from tests.reasoning.conftest import MakeConfig

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def _bundle_chains(limit: int) -> list[ChainSample]:
    path = resources.files("assets").joinpath("graphs", "ml-100k.jsonl.gz")
    chains = []
    with gzip.open(str(path), "rt") as lines:
        next(lines)   # the bundle's header
        for line in lines:
            for chain in json.loads(line)["chains"]:
                if 2 <= len(chain["item_indices"]) <= 4:
                    chains.append(ChainSample(chain["intent"], tuple(chain["item_indices"])))
            if len(chains) >= limit:
                return chains[:limit]
    return chains


def test_real_chains_score_above_corrupted_ones(ml100k: Dataset, llama_backend: LLMBackend,
                                                make_config: MakeConfig) -> None:
    catalogue = ml100k.catalogue
    popularity = training_popularity([ml100k.history(u) for u in ml100k.user_ids], len(catalogue))
    setup = VerifySetup(ranks=popularity_ranks(popularity, len(catalogue)))
    result = evaluate_verification(llama_backend, catalogue, _bundle_chains(10),
                                   make_config(masks_per_chain=2, n_distractors=4), setup, seed=0)
    assert result.chains == 10 and result.dropped == 0 and result.tokens > 0
    assert result.real_mean > result.corrupted_mean
    assert result.auc is not None and result.auc > 0.5
