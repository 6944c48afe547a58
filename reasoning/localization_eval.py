"""How well a localizer maps intent texts to the items a film-literate reader accepts.

A labelled set is a TOML file of cases, each an intent ``text`` and the
dataset item ids a reader ``accept``s for it::

    [[case]]
    text = "Audrey Hepburn romance"
    accept = [487, 486, 131]   # Roman Holiday, Sabrina (1954), Breakfast at Tiffany's

:func:`evaluate_localizer` ranks the whole catalogue for every text and
reports hit@k (an accepted item among the top k) and MRR (the reciprocal
rank of the first accepted item over the full ranking). The sets issue #17
asks for live in ``tests/reasoning/data/`` (a dev set to choose settings on,
a held-back set scored once); ``reasonrec bench quality`` reads them too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from models.data import Catalogue


class LabelledSetError(ValueError):
    """A labelled set that cannot be used; the message names the file and the case."""


@dataclass(frozen=True)
class LabelledCase:
    """One intent text and the catalogue indices a reader accepts for it."""

    text: str
    accepted: frozenset[int]


@dataclass(frozen=True)
class CaseResult:
    """Where the first accepted item came in one case's ranking (0: never)."""

    text: str
    first_rank: int
    top: tuple[int, ...]   # catalogue indices of the top-k, best first

    @property
    def hit(self) -> bool:
        return 0 < self.first_rank <= len(self.top)


@dataclass(frozen=True)
class LocalizationScore:
    """hit@k and MRR of a localizer over a labelled set, with each case's result."""

    k: int
    hit_at_k: float
    mrr: float
    cases: tuple[CaseResult, ...] = field(repr=False)

    def misses(self) -> list[str]:
        """The texts whose top-k holds no accepted item."""
        return [case.text for case in self.cases if not case.hit]


class Ranker(Protocol):
    """What the evaluation needs of ``reasoning.localizer.IntentLocalizer``."""

    def rank(self, text: str, limit: int) -> list[tuple[int, float]]: ...


def load_labelled_set(path: Path, catalogue: Catalogue) -> list[LabelledCase]:
    """The cases of ``path``, their item ids checked against ``catalogue``.

    Raises:
        LabelledSetError: unreadable TOML, a case without text or accepted ids,
            or an id the catalogue does not have (named with its case).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabelledSetError(f"{path}: {exc}") from None
    cases = raw.get("case")
    if not isinstance(cases, list) or not cases:
        raise LabelledSetError(f"{path}: no [[case]] entries")
    out: list[LabelledCase] = []
    for number, case in enumerate(cases, start=1):
        text = case.get("text") if isinstance(case, dict) else None
        accept = case.get("accept") if isinstance(case, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise LabelledSetError(f"{path}: case {number}: 'text' must be a non-empty string")
        if not isinstance(accept, list) or not accept:
            raise LabelledSetError(f"{path}: case {number} ({text!r}): 'accept' must list item ids")
        unknown = [str(i) for i in accept if not catalogue.has_id(str(i))]
        if unknown:
            raise LabelledSetError(f"{path}: case {number} ({text!r}): item ids not in the "
                                   f"catalogue: {', '.join(unknown)}")
        out.append(LabelledCase(text.strip(),
                                frozenset(catalogue.by_id(str(i)).index for i in accept)))
    return out


def evaluate_localizer(localizer: Ranker, cases: list[LabelledCase], n_items: int,
                       k: int = 5) -> LocalizationScore:
    """hit@``k`` and MRR of ``localizer`` over ``cases`` (``n_items``: the catalogue's size)."""
    if not cases:
        raise ValueError("no labelled cases to evaluate")
    results = []
    for case in cases:
        ranked = [index for index, _ in localizer.rank(case.text, n_items)]
        first = next((rank for rank, index in enumerate(ranked, start=1)
                      if index in case.accepted), 0)
        results.append(CaseResult(case.text, first, tuple(ranked[:k])))
    hit = sum(r.hit for r in results) / len(results)
    mrr = sum(1.0 / r.first_rank for r in results if r.first_rank) / len(results)
    return LocalizationScore(k, round(hit, 4), round(mrr, 4), tuple(results))
