"""Stage 3 helpers: which items are masked, what context is shown, which options are offered."""

from __future__ import annotations

from models.data import Catalogue
from reasoning.verify import build_options, context_window, mask_positions, status_of


def test_mask_positions_start_with_the_chain_end() -> None:
    assert mask_positions(1, 2) == [0]
    assert mask_positions(4, 2) == [3, 0]
    assert mask_positions(3, 5) == [2, 0, 1]


def test_context_shows_at_most_three_neighbours() -> None:
    assert list(context_window(1, 0)) == [0]
    assert list(context_window(8, 7)) == [4, 5, 6, 7]
    assert list(context_window(8, 4)) == [2, 3, 4, 5]
    assert list(context_window(8, 0)) == [0, 1]
    for length in range(1, 9):
        for position in range(length):
            shown = context_window(length, position)
            assert position in shown and len(shown) <= 4


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
