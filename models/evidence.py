"""Facts from the data that link a reasoning path's last node to a recommended item (#18).

Three kinds, each a typed :class:`models.explain_schema.EvidenceFact` whose
numbers are kept as fields so an analyst can recount them:

* **co-watch**: of the training users who watched a chain item, how many
  watched the item at a later position of their training history, and the
  lift of that share over the item's share of all users. Counted on the loo
  split's *training* interactions only (``LeaveOneOut.train``: each history
  without its validation and test targets), so no target leaks into a fact;
* **shared genres** between a chain item and the item (the catalogue's
  genres; ``unknown`` is no genre);
* **interest similarity**: the text encoder's similarity of the LLM's
  interest and the item, through the localizer's public
  ``encoder_scores(text)`` (so a new encoder flows through), with the share
  of the catalogue the item is closer than; and **localized**, when the graph
  builder itself matched the interest to the item.

Thresholds for what counts as a link are constants here, named and fixed
before any measurement: a co-watch link needs at least
:data:`MIN_CO_WATCH` viewers and a lift above 1; a similarity link needs the
item to be closer to the interest than :data:`MIN_CLOSER_THAN` of the
catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.bounded_cache import BoundedCache
from models.data import Catalogue
from models.explain_schema import EvidenceFact, EvidenceKind, ItemRef

#: Fewest training viewers behind a co-watch link (one viewer is a coincidence).
MIN_CO_WATCH = 2
#: A similarity link: the item is closer to the interest than this share of the catalogue.
MIN_CLOSER_THAN = 0.9
#: Genres that say nothing about an item.
NO_GENRE = frozenset({"unknown", ""})


class InterestSimilarity(Protocol):
    """What interest evidence needs of ``reasoning.localizer.IntentLocalizer``."""

    def encoder_scores(self, text: str) -> np.ndarray:
        """``[n_items]`` similarities of ``text`` and each item (catalogue index - 1)."""
        ...


class CachedSimilarity:
    """An :class:`InterestSimilarity` that remembers the scores of its latest texts.

    An explanation asks for the same interests once per explained item (ten items, the
    same handful of interests); each ask is a product with every item's vector. The
    scores of a text never change, so the most recent ``size`` are kept, read-only.
    """

    def __init__(self, similarity: InterestSimilarity, size: int = 256) -> None:
        self.similarity = similarity
        self._scores: BoundedCache[str, np.ndarray] = BoundedCache(size)

    def encoder_scores(self, text: str) -> np.ndarray:
        scores = self._scores.get(text)
        if scores is None:
            scores = np.asarray(self.similarity.encoder_scores(text), dtype=np.float64)
            scores.setflags(write=False)
            self._scores.put(text, scores)
        return scores


@dataclass(frozen=True)
class CoWatch:
    """One co-watch count (see the module docstring)."""

    source: int
    target: int
    viewers_source: int
    viewers_both: int
    viewers_target: int
    users: int

    @property
    def lift(self) -> float:
        if not self.viewers_source or not self.viewers_target:
            return 0.0
        return (self.viewers_both / self.viewers_source) / (self.viewers_target / self.users)

    @property
    def links(self) -> bool:
        return self.viewers_both >= MIN_CO_WATCH and self.lift > 1.0


class CoWatchIndex:
    """First and last training positions of every item per user, for co-watch counts.

    Args:
        train: per user, the training item indices in time order
            (``LeaveOneOut.train``).
        n_items: catalogue size (indices 1..n_items).

    Shapes:
        ``first``, ``last``: ``[users, n_items + 1]`` int32, -1 where unseen.
    """

    def __init__(self, train: Sequence[np.ndarray], n_items: int) -> None:
        users = len(train)
        self.first = np.full((users, n_items + 1), -1, dtype=np.int32)
        self.last = np.full((users, n_items + 1), -1, dtype=np.int32)
        for u, history in enumerate(train):
            history = np.asarray(history, dtype=np.int64)
            if not len(history):
                continue
            items, first = np.unique(history, return_index=True)
            _, from_end = np.unique(history[::-1], return_index=True)
            self.first[u, items] = first
            self.last[u, items] = len(history) - 1 - from_end
        self.users = int(sum(len(h) > 0 for h in train))
        self.viewers = (self.first >= 0).sum(axis=0)

    def count(self, source: int, target: int) -> CoWatch:
        """Training users who watched ``source``, and of them who watched ``target`` later."""
        first, last = self.first[:, source], self.last[:, target]
        both = int(((first >= 0) & (last > first)).sum())
        return CoWatch(source, target, int(self.viewers[source]), both,
                       int(self.viewers[target]), self.users)


def _ref(catalogue: Catalogue, index: int) -> ItemRef:
    item = catalogue[int(index)]
    return ItemRef(index=item.index, item_id=item.item_id, title=item.display_name)


def genres(catalogue: Catalogue, index: int) -> list[str]:
    return [g for g in catalogue[int(index)].genres if g.strip().lower() not in NO_GENRE]


def co_watch_fact(catalogue: Catalogue, count: CoWatch) -> EvidenceFact:
    source, target = _ref(catalogue, count.source), _ref(catalogue, count.target)
    text = (f"{count.viewers_both} of {count.viewers_source} viewers who watched "
            f"{source.title} later watched {target.title} (lift {count.lift:.1f})")
    return EvidenceFact(kind=EvidenceKind.CO_WATCH, text=text, numeric=True, source=source,
                        target=target, viewers_source=count.viewers_source,
                        viewers_both=count.viewers_both, viewers_target=count.viewers_target,
                        users=count.users, lift=round(count.lift, 4))


def shared_genres_fact(catalogue: Catalogue, source: int, target: int) -> EvidenceFact | None:
    shared = [g for g in genres(catalogue, target) if g in set(genres(catalogue, source))]
    if not shared:
        return None
    source_ref, target_ref = _ref(catalogue, source), _ref(catalogue, target)
    return EvidenceFact(kind=EvidenceKind.SHARED_GENRES, numeric=False, source=source_ref,
                        target=target_ref, genres=shared,
                        text=f"{target_ref.title} shares {', '.join(shared)} with "
                             f"{source_ref.title}")


def chain_facts(catalogue: Catalogue, index: CoWatchIndex, chain_items: Sequence[int],
                target: int, limit: int = 3) -> list[EvidenceFact]:
    """Co-watch links (strongest lift first, at most ``limit``), then shared genres.

    Genre facts are kept only for chain items without a co-watch link, and at
    most ``limit`` of them: enough to check, not a list of every film.
    """
    counts = [index.count(s, target) for s in dict.fromkeys(chain_items) if s != target]
    linked = sorted((c for c in counts if c.links),
                    key=lambda c: (-c.lift, -c.viewers_both, c.source))[:limit]
    facts = [co_watch_fact(catalogue, c) for c in linked]
    with_link = {c.source for c in linked}
    for source in dict.fromkeys(chain_items):
        if len(facts) >= len(linked) + limit:
            break
        if source == target or source in with_link:
            continue
        fact = shared_genres_fact(catalogue, source, target)
        if fact is not None:
            facts.append(fact)
    return facts


def interest_facts(catalogue: Catalogue, interest: str, target: int,
                   similarity: InterestSimilarity | None,
                   localized_weight: float | None) -> list[EvidenceFact]:
    """The localizer's match of the interest to the item (when the graph has it), then the
    encoder similarity when the item is closer than :data:`MIN_CLOSER_THAN` of the catalogue."""
    target_ref = _ref(catalogue, target)
    facts = []
    if localized_weight is not None:
        facts.append(EvidenceFact(
            kind=EvidenceKind.LOCALIZED, numeric=True, target=target_ref, interest=interest,
            similarity=round(float(localized_weight), 4),
            text=f"the interest \u201c{interest}\u201d was matched to {target_ref.title} when "
                 f"the reasoning was built (match {localized_weight:.2f})"))
    if similarity is not None:
        scores = np.asarray(similarity.encoder_scores(interest), dtype=np.float64)
        value = float(scores[target - 1])
        closer = float((scores < value).mean())
        if value > 0 and closer >= MIN_CLOSER_THAN:
            facts.append(EvidenceFact(
                kind=EvidenceKind.INTEREST_SIMILARITY, numeric=True, target=target_ref,
                interest=interest, similarity=round(value, 4), closer_than=round(closer, 4),
                text=f"{target_ref.title} is closer to the interest \u201c{interest}\u201d than "
                     f"{closer:.0%} of films (similarity {value:.2f})"))
    return facts
