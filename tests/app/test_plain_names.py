"""Models and strategies in words: the registry's descriptions, fallbacks, and the sentence
that names the strategies without a trained run."""

from __future__ import annotations

from app.components.plain_names import (bench_row_words, model_words, strategy_words,
                                        unavailable_words)
from models.fusion.registry import VARIANTS
from models.recommenders import MODEL_NAMES
from reasonrec.fusion import StrategyRun


def test_every_model_and_registered_strategy_has_words() -> None:
    for name in MODEL_NAMES:
        assert model_words(name) != name
    for spec in VARIANTS:
        words = strategy_words(spec.name)
        assert words.lower() == spec.description.lower() and words[0].isupper()
    assert bench_row_words("base", "best base (srgnn)", "srgnn") == \
        "Base model alone (SR-GNN session graph model)"
    # a bench row the registry no longer lists keeps the bench's own description
    assert strategy_words("retired-variant", "an old row") == "An old row"


def test_strategies_without_a_run_are_named_once_per_reason() -> None:
    trained = StrategyRun(VARIANTS[0].name, VARIANTS[0].description,
                          run=object())  # type: ignore[arg-type]
    runs = [trained] + [StrategyRun(v.name, v.description, None, "not trained yet")
                        for v in VARIANTS[1:3]] + [
        StrategyRun(VARIANTS[3].name, VARIANTS[3].description, None, "its inputs are missing")]
    sentence = unavailable_words(runs)
    assert sentence == (f"Not available, not trained yet: {strategy_words(VARIANTS[1].name)}; "
                        f"{strategy_words(VARIANTS[2].name)}. Not available, its inputs are "
                        f"missing: {strategy_words(VARIANTS[3].name)}.")
    assert unavailable_words([trained]) == ""
