"""The user and point-in-history pickers every page shares (views over ``app.state``).

One scale for the point on every page: "after watching N films", N counted from the
start of the user's history (the models have seen those N films; the next one is the
film to predict). Each page offers the part of that scale it can show (the Session
explorer the whole history, the reasoning pages the window their graph covers) and
clamps a point chosen elsewhere into it, saying so.

The shared state is the truth; each widget mirrors it and writes back through its
``on_change`` callback (which runs before the page), so a choice on one page, or a
``?user=&step=`` link, shows on the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.state import (current_films, current_user, mirror_widget, set_current_films,
                       set_current_user)

POINT_LABEL = "Point in history"
POINT_FORMAT = "after %d films"


def _take_user(key: str) -> None:
    set_current_user(st.session_state[key])


def _take_point(user: str, key: str) -> None:
    set_current_films(user, int(st.session_state[key]))


def user_picker(studio: Any, key: str, label: str = "User", where: Any = None,
                help: str | None = None) -> str:
    """The shared user's select box (``where``: a column or container; default the page)."""
    user = current_user(studio)
    mirror_widget(key, user)
    (where or st).selectbox(label, studio.dataset.user_ids, key=key, on_change=_take_user,
                            args=(key,), help=help or "Type to search the user ids. The choice "
                            "carries over to the other pages.")
    return user


@dataclass(frozen=True)
class Point:
    """The point a page shows: ``films`` watched before it, and the shared choice when the
    page could not show that one (``wanted``, clamped into the page's range)."""

    films: int
    wanted: int | None = None

    @property
    def clamped(self) -> bool:
        return self.wanted is not None and self.wanted != self.films


def point_picker(user: str, low: int, high: int, default: int, key: str, where: Any = None,
                 help: str | None = None) -> Point:
    """A slider over films ``low``..``high`` watched, mirroring the shared point."""
    chosen = current_films(user)
    films = min(max(default if chosen is None else chosen, low), high)
    if chosen is None:
        set_current_films(user, films)   # the page's default is the point a link carries
    mirror_widget(key, films)
    if low < high:
        (where or st).slider(POINT_LABEL, min_value=low, max_value=high, key=key,
                             format=POINT_FORMAT, on_change=_take_point, args=(user, key),
                             help=help)
    return Point(films, chosen if chosen is not None and chosen != films else None)


def clamp_note(point: Point, low: int, high: int, what: str) -> str | None:
    """One sentence when the shared point lies outside what this page can show."""
    if not point.clamped:
        return None
    return (f"You chose the point after {point.wanted} films; {what} covers the points after "
            f"{low}–{high} films, so this page shows the one after {point.films}.")
