"""Localization against the hand-labelled sets of issue #17 (tests/reasoning/data/).

The localizer's settings were chosen on the dev set only; the held-back set
was scored once after that choice (hit@5 0.545, MRR 0.372, under the 0.65 bar:
most misses name an actor, whom item texts of title, year and genres do not
mention). Its test is a strict xfail, so it fails loudly once the bar is met.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import Dataset
from reasoning.localization_eval import (LabelledCase, LabelledSetError, evaluate_localizer,
                                         load_labelled_set)
from reasoning.localizer import IntentLocalizer

DATA = Path(__file__).parent / "data"
DEV = DATA / "localization_dev.toml"
HELD_OUT = DATA / "localization_heldout.toml"


def test_the_labelled_sets_are_large_enough_independent_and_name_real_items(
        ml100k: Dataset) -> None:
    dev = load_labelled_set(DEV, ml100k.catalogue)
    held_out = load_labelled_set(HELD_OUT, ml100k.catalogue)
    assert len(dev) >= 40 and len(held_out) >= 20
    dev_texts = {c.text.lower() for c in dev}
    assert len(dev_texts) == len(dev) and not dev_texts & {c.text.lower() for c in held_out}


def test_a_bad_labelled_set_names_the_file_and_the_case(ml100k: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "set.toml"
    path.write_text('[[case]]\ntext = "space battles"\naccept = [50]\n\n'
                    '[[case]]\ntext = "nowhere"\naccept = [50, 99999]\n')
    with pytest.raises(LabelledSetError, match=r"set\.toml: case 2 \('nowhere'\).*99999"):
        load_labelled_set(path, ml100k.catalogue)
    path.write_text('[[case]]\ntext = "no ids"\naccept = []\n')
    with pytest.raises(LabelledSetError, match="case 1.*accept"):
        load_labelled_set(path, ml100k.catalogue)
    path.write_text("[[case]\n")
    with pytest.raises(LabelledSetError, match="set.toml"):
        load_labelled_set(path, ml100k.catalogue)


class _FixedRanking:
    def __init__(self, rankings: dict[str, list[int]]) -> None:
        self.rankings = rankings

    def rank(self, text: str, limit: int) -> list[tuple[int, float]]:
        return [(i, 1.0) for i in self.rankings[text]][:limit]


def test_hit_at_k_and_mrr_follow_the_first_accepted_item() -> None:
    cases = [LabelledCase("a", frozenset({3})), LabelledCase("b", frozenset({9})),
             LabelledCase("c", frozenset({1, 2}))]
    ranker = _FixedRanking({"a": [5, 4, 3, 2, 1], "b": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                            "c": [7, 8]})
    score = evaluate_localizer(ranker, cases, n_items=9, k=3)
    assert score.hit_at_k == round(1 / 3, 4)                    # only "a" (rank 3)
    assert score.mrr == round((1 / 3 + 1 / 9) / 3, 4)           # "c" never ranks an accepted item
    assert score.misses() == ["b", "c"]
    with pytest.raises(ValueError):
        evaluate_localizer(ranker, [], n_items=9)


@pytest.mark.llm
def test_localize_maps_labelled_texts_to_films_not_word_matches(
        ml100k: Dataset, ml100k_localizer: IntentLocalizer) -> None:
    catalogue = ml100k.catalogue

    def top_ids(text: str, r: int = 5) -> list[str]:
        return [catalogue[i].item_id for i, _ in ml100k_localizer.localize(text, r)]

    assert top_ids("The Jungle Book", 1) == ["465"]                        # Jungle Book (1994)
    assert {"174", "210"} & set(top_ids("Harrison Ford adventure"))        # Raiders, Last Crusade
    assert {"50", "271"} & set(top_ids("space battles"))                   # Star Wars, Starship Troopers
    # Children's fantasy (Wizard of Oz, Willy Wonka, Matilda, ...) in the top 3; the
    # word still pulls in Deconstructing Harry (1st) and When Harry Met Sally (4th).
    accepted = {"151", "132", "477", "625", "1133", "142", "951", "548", "173", "755", "1076",
                "419"}
    assert accepted & set(top_ids("Harry Potter", 3))
    # Localize skips what it is told to (a user's history).
    jungle = catalogue.by_id("465").index
    assert jungle not in [i for i, _ in ml100k_localizer.localize("The Jungle Book", 5,
                                                                  exclude={jungle})]


def labelled_score(path, dataset: Dataset, localizer: IntentLocalizer):
    """The localizer's hit@5 and MRR over one labelled set, printed for the log."""
    score = evaluate_localizer(localizer, load_labelled_set(path, dataset.catalogue),
                               len(dataset.catalogue))
    print(f"{path.stem}: hit@5 {score.hit_at_k}, MRR {score.mrr}, misses {score.misses()}")
    return score


@pytest.mark.llm
def test_dev_set_hit_at_5_meets_the_bar(ml100k: Dataset,
                                        ml100k_localizer: IntentLocalizer) -> None:
    score = labelled_score(DEV, ml100k, ml100k_localizer)
    assert score.hit_at_k >= 0.75, score.misses()


@pytest.mark.llm
@pytest.mark.xfail(strict=True, reason="held-back hit@5 is 0.545 (< 0.65): actor-name intents "
                                       "miss; item texts carry no cast")
def test_held_back_hit_at_5_meets_the_bar(ml100k: Dataset,
                                          ml100k_localizer: IntentLocalizer) -> None:
    score = labelled_score(HELD_OUT, ml100k, ml100k_localizer)
    assert score.hit_at_k >= 0.65, score.misses()
