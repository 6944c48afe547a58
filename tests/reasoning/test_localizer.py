"""Localizing free-text intents: lexical unit tests, then the real sentence encoder (llm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data import Dataset
from models.protocol import leave_one_out
from reasoning.localizer import IntentLocalizer, training_popularity, words


class _NoEncoder:
    """Lexical-only localizers must never touch an encoder."""

    identity = "none"

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("the encoder was used")


def test_words_fold_plurals_and_drop_stopwords() -> None:
    assert words("The Comedies of Errors") == ["comedy", "error"]
    assert words("Sci-Fi thrillers!") == ["sci", "fi", "thriller"]


def test_lexical_match_finds_titles_and_never_invents_items(ml100k: Dataset, tmp_path: Path) -> None:
    localizer = IntentLocalizer(ml100k.catalogue, _NoEncoder(), tmp_path, lexical_weight=1.0)
    lion = localizer.localize("The Lion King", 3)
    assert ml100k.catalogue[lion[0][0]].title.startswith("Lion King")
    assert lion[0][1] == 1.0
    # A title that is not in the catalogue only reaches real items, with partial weights.
    for index, weight in localizer.localize("The Dark Knight Returns", 5):
        assert 1 <= index <= len(ml100k.catalogue) and 0 < weight < 1
    assert localizer.localize("zzzz qqqq", 5) == []
    excluded = localizer.localize("The Lion King", 3, exclude={lion[0][0]})
    assert lion[0][0] not in [i for i, _ in excluded]


@pytest.mark.llm
@pytest.mark.slow
def test_encoder_matches_meaning(ml100k: Dataset, ml100k_localizer: IntentLocalizer) -> None:
    localizer = ml100k_localizer
    localizer.ensure_item_vectors()
    assert localizer.cache_path.is_file()
    found = localizer.localize("space battles", 10)
    titles = [ml100k.catalogue[i].title for i, _ in found]
    assert any(t.startswith(("Star Wars", "Starship Troopers", "Star Trek", "Return of the Jedi",
                             "Empire Strikes Back")) for t in titles), titles
    assert all(0 <= weight <= 1 for _, weight in found)
    # A second localizer reads the item-vector cache and loads no model for it.
    again = IntentLocalizer(ml100k.catalogue, localizer.encoder, localizer.cache_dir,
                            localizer.lexical_weight)
    again.ensure_item_vectors()
    np.testing.assert_allclose(again._vectors, localizer._vectors)


def test_training_popularity_never_counts_validation_or_test_targets(ml100k: Dataset) -> None:
    counts = training_popularity(ml100k)
    split = leave_one_out(ml100k)
    assert counts.shape == (len(ml100k.catalogue),)
    assert counts.sum() == sum(len(h) for h in split.train)
    everything = np.bincount(np.concatenate(ml100k.histories), minlength=len(ml100k.catalogue) + 1)[1:]
    held_out = np.bincount(np.concatenate([split.valid.targets, split.test.targets]),
                           minlength=len(ml100k.catalogue) + 1)[1:]
    np.testing.assert_array_equal(counts, everything - held_out)


class _SameVector:
    """Every text gets the same vector, so only the popularity prior can rank items."""

    identity = "same-vector"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32)


def test_popularity_prior_ranks_equal_matches_by_training_popularity(ml100k: Dataset,
                                                                     tmp_path: Path) -> None:
    counts = training_popularity(ml100k)
    plain = IntentLocalizer(ml100k.catalogue, _SameVector(), tmp_path)
    with_prior = IntentLocalizer(ml100k.catalogue, _SameVector(), tmp_path, popularity=counts,
                                 popularity_weight=0.15)
    assert [i for i, _ in plain.rank("space battles", 3)] == [1, 2, 3]   # ties: lowest index
    ranked = with_prior.rank("space battles", 3)
    assert [i for i, _ in ranked] == [int(i) + 1 for i in np.argsort(-counts, kind="stable")[:3]]
    assert ranked[0][1] == 1.0 and all(0 < w <= 1 for _, w in ranked)
    assert plain.identity != with_prior.identity        # KB localizations are kept apart
    with pytest.raises(ValueError, match="popularity"):
        IntentLocalizer(ml100k.catalogue, _SameVector(), tmp_path, popularity=np.ones(3))
