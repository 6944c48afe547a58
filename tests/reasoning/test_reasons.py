"""Chain reasons: the template detector and the candidate phrases built from the data."""

from __future__ import annotations

import pytest

from models.data import Item
from reasoning.reasons import (genre_phrase, is_template_reason, new_interest_candidates,
                               shared_candidates)


@pytest.mark.parametrize("reason, label", [
    ("", "romance"), ("   ", "romance"),
    ("no adrenaline action chain yet", "adrenaline action"), ("no suspense", "romance"),
    ("not a comedy", "a good laugh"), ("isn't scary", "horror scares"),
    ("family fun", "family fun"), ("Family fun!", "family fun"), ("another romance", "romance"),
    ("family fun, serious drama", "family fun"),   # other labels copied
    ("first item of the window", "romance"), ("started a new chain", "romance"),
    ("joined c2, the latest chain with the same intent", "romance"),
])
def test_templates_negations_and_label_copies_are_detected(reason: str, label: str) -> None:
    assert is_template_reason(reason, label)


@pytest.mark.parametrize("reason, label", [
    ("another Bruce Willis action sequel", "adrenaline action"),
    ("a second Jane Austen adaptation", "romance"),
    ("another 1990s romantic comedy", "romance"),
    ("another Star Trek film", "sci-fi wonder"),
    ("a 1970s crime drama", "crime and mystery"),
])
def test_reasons_about_the_films_pass(reason: str, label: str) -> None:
    assert not is_template_reason(reason, label)


def _item(index: int, title: str, year: int, genres: tuple[str, ...]) -> Item:
    return Item(index=index, item_id=str(index), title=title, year=year, genres=genres)


def test_shared_candidates_name_the_franchise_genres_and_decade() -> None:
    first = _item(1, "Star Trek: First Contact", 1996, ("Action", "Adventure", "Sci-Fi"))
    second = _item(2, "Star Trek: Generations", 1994, ("Action", "Adventure", "Sci-Fi"))
    candidates = shared_candidates(second, [first])
    assert candidates[0] == "another Star Trek film"
    assert "another 1990s adventure sci-fi film" in candidates
    assert all(not is_template_reason(c, "sci-fi wonder") for c in candidates)


def test_nothing_shared_still_names_the_films() -> None:
    first = _item(1, "Fargo", 1996, ("Crime", "Drama", "Thriller"))
    second = _item(2, "Toy Story", 1995, ("Animation", "Children's", "Comedy"))
    assert shared_candidates(second, [first]) == ["another film of the 1990s, like Fargo"]
    older = _item(3, "Casablanca", 1942, ("Drama", "Romance", "War"))
    assert shared_candidates(second, [older]) == ["an animated comedy to follow Casablanca"]


def test_new_interest_candidates_describe_the_film() -> None:
    film = _item(3, "Sense and Sensibility", 1995, ("Drama", "Romance"))
    candidates = new_interest_candidates(film)
    assert candidates[0] == "a 1990s romantic drama"
    assert all(not is_template_reason(c, "romance") for c in candidates)
    assert genre_phrase(("Comedy", "Romance")) == "romantic comedy"
    assert genre_phrase(()) is None
