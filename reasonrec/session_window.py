"""The session window and history a page shows: plain look-ups on ``models.data.Dataset``.

No modelling here: the window is the last ``l_tru`` history items before a
chosen point, exactly what the reasoning layer will be given, and the item at
the point is the true next item (shown for error analysis, never given to a
model). Statistics are counts over those items.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from models.data import Dataset


@dataclass(frozen=True)
class GraphItem:
    """One film of a drawn history window.

    Attributes:
        position: position in the user's history (0-based).
        item_id: the dataset's item token.
        title: the title as given by the data (untrusted).
        year: release year when known.
        genres: genre labels (untrusted).
        timestamp: seconds since the epoch.
        session: 1-based number of the user's session the item belongs to.
    """

    position: int
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    timestamp: float
    session: int


@dataclass
class SessionWindow:
    """What the session explorer draws for one user and one point in the history.

    Attributes:
        user: the user token.
        point: number of history items before the point (1..len(history));
            the window ends just before it.
        history_length: the user's number of interactions.
        items: the window, oldest first (at most ``l_tru`` items).
        next_item: the item at ``point`` (``None`` at the end of the history).
        n_sessions: the user's number of sessions over the whole history.
        genre_mix: genre -> number of window items with that genre, most common first.
    """

    user: str
    point: int
    history_length: int
    items: list[GraphItem]
    next_item: GraphItem | None
    n_sessions: int
    genre_mix: list[tuple[str, int]] = field(default_factory=list)

    @property
    def sessions_in_window(self) -> int:
        return len({item.session for item in self.items})

    @property
    def time_span_seconds(self) -> float:
        if not self.items:
            return 0.0
        return self.items[-1].timestamp - self.items[0].timestamp


def session_numbers(dataset: Dataset, user: str, gap_seconds: float) -> np.ndarray:
    """1-based session number of each history position."""
    sessions = dataset.sessions(user, gap_seconds)
    numbers = np.zeros(len(dataset.history(user)), dtype=np.int64)
    for number, positions in enumerate(sessions, start=1):
        numbers[positions] = number
    return numbers


def build_window(dataset: Dataset, user: str, point: int, l_tru: int,
                 gap_seconds: float) -> SessionWindow:
    """The window of ``l_tru`` items before ``point`` in ``user``'s history.

    Raises:
        KeyError: unknown user (the message names it).
        ValueError: ``point`` outside 1..len(history) or ``l_tru`` < 1.
    """
    history = dataset.history(user)
    times = dataset.timestamps[dataset.user_index(user)]
    if l_tru < 1:
        raise ValueError(f"the window length l_tru must be at least 1, got {l_tru}")
    if not 1 <= point <= len(history):
        raise ValueError(f"point {point} is outside user {user}'s history (1..{len(history)})")
    sessions = session_numbers(dataset, user, gap_seconds)

    def item_at(position: int) -> GraphItem:
        item = dataset.catalogue[int(history[position])]
        return GraphItem(position=position, item_id=item.item_id, title=item.display_name,
                         year=item.year, genres=tuple(item.genres),
                         timestamp=float(times[position]), session=int(sessions[position]))

    items = [item_at(p) for p in range(max(0, point - l_tru), point)]
    next_item = item_at(point) if point < len(history) else None
    mix = Counter(g for item in items for g in item.genres)
    return SessionWindow(user=str(user), point=point, history_length=len(history), items=items,
                         next_item=next_item, n_sessions=int(sessions.max(initial=0)),
                         genre_mix=mix.most_common())


def users_who_watched(dataset: Dataset, item_index: int) -> list[str]:
    """Users whose history contains the item, in dataset order."""
    return [user for user, history in zip(dataset.user_ids, dataset.histories)
            if (history == item_index).any()]


def describe_span(seconds: float) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``3.5 h``, ``12 days``."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass(frozen=True)
class HistoryFilm:
    """One film of a user's history: ``position`` is 0-based, so it is film ``position + 1``."""

    position: int
    title: str
    year: int | None
    session: int
    timestamp: float


@dataclass(frozen=True)
class HistorySession:
    """A run of ratings with no gap longer than the session gap (``number`` is 1-based)."""

    number: int
    films: tuple[HistoryFilm, ...]

    @property
    def span_seconds(self) -> float:
        return self.films[-1].timestamp - self.films[0].timestamp


def history_sessions(dataset: Dataset, user: str, gap_seconds: float) -> list[HistorySession]:
    """``user``'s whole history as sessions, oldest first (KeyError: unknown user)."""
    history = dataset.history(user)
    times = dataset.timestamps[dataset.user_index(user)]
    sessions = []
    for number, positions in enumerate(dataset.sessions(user, gap_seconds), start=1):
        films = []
        for position in positions:
            item = dataset.catalogue[int(history[position])]
            films.append(HistoryFilm(int(position), item.display_name, item.year, number,
                                     float(times[position])))
        sessions.append(HistorySession(number, tuple(films)))
    return sessions


def find_films(sessions: list[HistorySession], query: str) -> list[HistoryFilm]:
    """The films whose title contains ``query`` (case and surrounding spaces ignored)."""
    needle = query.strip().casefold()
    if not needle:
        return []
    return [film for session in sessions for film in session.films
            if needle in film.title.casefold()]
