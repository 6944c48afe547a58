"""Stage 3 helpers: masks, popularity-matched options, normalization, and the AUC measure."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import Catalogue
from reasoning.verification_eval import ChainSample, auc, best_threshold, corrupt
from reasoning.verify import (DistractorGenres, Normalization, build_options, mask_positions,
                              option_probabilities, popularity_ranks, status_of,
                              training_popularity)


def test_mask_positions_start_with_the_chain_end() -> None:
    assert mask_positions(1, 2) == [0]
    assert mask_positions(4, 2) == [3, 0]
    assert mask_positions(3, 5) == [2, 0, 1]


def test_options_depend_on_the_masked_item_only_and_skip_the_chain() -> None:
    catalogue = Catalogue.build([(str(i), f"Movie {i}", 2000, ("Drama",)) for i in range(1, 30)])
    options = build_options(catalogue, 5, {5, 6, 7}, 3, seed=1)
    assert len(options) == 4 and options.count(5) == 1 and not {6, 7} & set(options)
    assert build_options(catalogue, 5, {5, 6, 7}, 3, seed=1) == options
    assert build_options(catalogue, 5, {5}, 3, seed=1).index(5) == options.index(5)
    assert build_options(catalogue, 5, {5, 6, 7}, 3, seed=2) != options


def test_status_from_score() -> None:
    assert status_of(None, 0.5) == "unverified"
    assert status_of(0.5, 0.5) == "verified"
    assert status_of(0.49, 0.5) == "rejected"


def _popular_catalogue() -> tuple[Catalogue, np.ndarray]:
    genres = [("Drama",), ("Comedy",), ("Drama", "Romance")]
    catalogue = Catalogue.build([(str(i), f"Movie {i}", 2000, genres[i % 3]) for i in range(1, 101)])
    popularity = np.zeros(101, dtype=np.int64)
    popularity[1:] = np.arange(100, 0, -1)   # item 1 the most popular, item 100 the least
    return catalogue, popularity


def test_distractors_match_the_masked_items_popularity() -> None:
    catalogue, popularity = _popular_catalogue()
    ranks = popularity_ranks(popularity, len(catalogue))
    assert ranks[1] == 0 and ranks[100] == 99
    options = build_options(catalogue, 50, {50, 51}, 5, seed=1, ranks=ranks)
    assert len(options) == 6 and options.count(50) == 1 and 51 not in options
    # Drawn from the items nearest in popularity rank, never the extremes.
    assert all(abs(int(ranks[o]) - int(ranks[50])) <= 13 for o in options)
    popular = build_options(catalogue, 2, {2}, 5, seed=1, ranks=ranks)
    assert all(int(ranks[o]) < 30 for o in popular)
    assert build_options(catalogue, 50, {50, 51}, 5, seed=1, ranks=ranks) == options


def test_distractors_share_a_genre_when_asked() -> None:
    catalogue, popularity = _popular_catalogue()
    ranks = popularity_ranks(popularity, len(catalogue))
    options = build_options(catalogue, 50, {50}, 5, seed=1, ranks=ranks,
                            genres=DistractorGenres.SHARED)
    wanted = set(catalogue[50].genres)
    assert all(wanted & set(catalogue[o].genres) for o in options)


def test_training_popularity_leaves_out_validation_and_test_items() -> None:
    counts = training_popularity([[1, 2, 3, 4], [2, 5, 6]], 6)
    assert counts.tolist() == [0, 1, 2, 0, 0, 0, 0]


def test_auc_and_the_best_threshold() -> None:
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([0.1], [0.9]) == 0.0
    tau, accuracy = best_threshold([0.6, 0.7, 0.8], [0.1, 0.2, 0.65])
    assert 0.2 < tau <= 0.6 and accuracy == pytest.approx(5 / 6)


def test_a_corrupted_chain_swaps_one_item_for_one_of_other_genres() -> None:
    catalogue, _ = _popular_catalogue()
    chain = ChainSample("serious drama", (3, 6, 9))   # all Drama (index % 3 == 0)
    twin = corrupt(chain, catalogue, seed=4)
    changed = [p for p in range(3) if twin.items[p] != chain.items[p]]
    assert len(changed) == 1
    new = twin.items[changed[0]]
    assert not set(catalogue[new].genres) & set(catalogue[chain.items[changed[0]]].genres)
    assert corrupt(chain, catalogue, seed=4) == twin


def test_option_probabilities_normalize() -> None:
    total = option_probabilities([-10.0, -20.0], [2, 10], Normalization.TOTAL)
    per_token = option_probabilities([-10.0, -20.0], [2, 10], Normalization.PER_TOKEN)
    pmi = option_probabilities([-10.0, -20.0], [2, 10], Normalization.PMI, priors=[-5.0, -25.0])
    assert total[0] > total[1] and per_token[1] > per_token[0] and pmi[1] > pmi[0]
    assert sum(pmi) == pytest.approx(1.0)
