"""Localizing free-text intents: lexical unit tests, then the real GGUF encoder (llm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data import Dataset
from reasoning.llama_backend import default_model_path
from reasoning.localizer import GGUFTextEncoder, IntentLocalizer, words


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


@pytest.mark.llm
@pytest.mark.slow
def test_converted_encoder_copy_gives_the_gguf_vectors(tmp_path: Path) -> None:
    """The saved copy is only a faster way to load: vectors are identical."""
    texts = ["space battles", "Star Wars (1977) [Action, Adventure, Romance, Sci-Fi, War]", "x"]
    first = GGUFTextEncoder(default_model_path(), 1, tmp_path)
    from_gguf = first.encode(texts)
    assert first.loaded_from.endswith(".gguf") and first.converted_dir.is_dir()
    second = GGUFTextEncoder(default_model_path(), 1, tmp_path)
    np.testing.assert_array_equal(second.encode(texts), from_gguf)
    assert second.loaded_from == str(second.converted_dir)
    assert from_gguf.shape == (3, 576) and np.isfinite(from_gguf).all()
