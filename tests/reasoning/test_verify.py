"""Stage 3 helpers: which items are masked, which options are offered."""

from __future__ import annotations

from models.data import Catalogue
from reasoning.verify import build_options, mask_positions, status_of


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
