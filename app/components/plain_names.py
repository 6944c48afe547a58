"""Models and fusion strategies in words, for the app's default views.

Run and model names (``srgnn``, ``llmrg-no-div``) are identifiers: the default views
show these words instead and the "Details" expanders keep the identifiers. Strategy
words come from the fusion registry's own descriptions (``models.fusion.registry``),
so a newly registered strategy is named without an edit here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Base recommenders (``models.recommenders.MODEL_NAMES``) in words.
BASE_MODEL_WORDS = {
    "pop": "Popularity (most-watched films)",
    "gru4rec": "GRU4Rec recurrent sequence model",
    "sasrec": "SASRec self-attention sequence model",
    "srgnn": "SR-GNN session graph model",
}
#: The fusion bench's row for the base model alone (not a registered variant).
BASE_ROW = "base"


def model_words(name: str | None) -> str:
    """A base model's plain name (an unknown name is shown as it is: it is all we have)."""
    if name is None:
        return "the base model"
    return BASE_MODEL_WORDS.get(name, name)


def strategy_words(name: str, fallback: str | None = None) -> str:
    """A fused variant's plain name: the registry's description, first letter capitalised.

    ``fallback`` (a bench row's own description) serves a variant the registry no longer
    lists; without one the name itself is shown.
    """
    from reasonrec.fusion import strategy_description

    text = strategy_description(name) or fallback or name
    return text[:1].upper() + text[1:]


def bench_row_words(name: str, description: str | None, base_model: str | None) -> str:
    """A fusion bench row in words: the base row names its model, the others their strategy."""
    if name == BASE_ROW:
        return f"Base model alone ({model_words(base_model)})"
    return strategy_words(name, description)


def unavailable_words(runs: Iterable[Any], lead: str = "Not available") -> str:
    """One sentence per reason for the strategies without a trained run (``StrategyRun``s),
    so a long registry stays readable; "" when every one has a run."""
    by_reason: dict[str, list[str]] = {}
    for run in runs:
        if not run.available:
            by_reason.setdefault(run.reason or "no trained run", []).append(
                strategy_words(run.name, run.description))
    return " ".join(f"{lead}, {reason}: {'; '.join(names)}." for reason, names in by_reason.items())
