"""Session explorer: find a user, choose a point in the history, see the session window.

The window is the last ``l_tru`` items before the point, drawn as an offline
pyvis graph; the item at the point is the true next item, shown for error
analysis and marked as never seen by the models.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from app import keys
from app.components.effect_state import md
from app.components.explanation_view import ordinal
from reasonrec.session_window import (
    HistoryFilm,
    HistorySession,
    SessionWindow,
    build_window,
    describe_span,
    find_films,
    history_sessions,
    users_who_watched,
)
from app.components.session_timeline import timeline_html
from app.components.pickers import point_picker, user_picker
from app.graph_html import NEVER_SEEN, OfflineHTMLError, session_graph_html
from app.state import set_current_films, set_current_user, studio_or_stop, window_length

GRAPH_HEIGHT = 460
HITS_LISTED = 5
BY_ID = "By user id"
BY_MOVIE = "By a movie they watched"

st.header("Session explorer")
studio = studio_or_stop()
dataset = studio.dataset
try:
    l_tru = window_length(studio)
except ValueError as exc:
    st.error(f"A reasoning setting is not valid: {exc}. Fix it on the **Settings** page.")
    st.stop()


def pick_user() -> str | None:
    """The user to explore: by id, or among the users who watched a chosen movie."""
    mode = st.radio("Find a user", [BY_ID, BY_MOVIE], horizontal=True, key=keys.EXPLORER_FIND_BY)
    if mode == BY_ID:
        return user_picker(studio, keys.EXPLORER_USER, "User id")
    catalogue = dataset.catalogue
    movie = st.selectbox("Movie", range(1, len(catalogue) + 1), index=None,
                         format_func=lambda i: catalogue[i].display_name,
                         key=keys.EXPLORER_MOVIE, placeholder="Type part of a title…",
                         help="Type to search the catalogue titles.")
    if movie is None:
        st.info("Pick a movie to list the users who watched it.")
        return None
    watchers = users_who_watched(dataset, movie)
    if not watchers:
        st.warning("Nobody in this dataset watched that movie; pick another one.")
        return None
    return st.selectbox(f"Users who watched it ({len(watchers)})", watchers,
                        key=keys.EXPLORER_MOVIE_USER)


def pick_point(user: str) -> int:
    """Number of history items before the point (the window ends just before it)."""
    n = len(dataset.history(user))
    if n < 2:
        st.caption(f"User {user} has a single interaction: the window is that item, "
                   "with no next item.")
        return n
    with st.container(key="explorer-point"):
        return point_picker(
            user, 1, n, n - 1, keys.explorer_point(user),
            help=f"The window is the last {l_tru} films before this point; the film after it "
                 "is the true next one. The default is the point before the last film, the "
                 "one the test holds out. At the end of the history there is no next film.").films


def show_stats(window: SessionWindow) -> None:
    st.metric("Sessions (whole history)", f"{window.n_sessions:,}",
              help=f"Split at gaps over {studio.config.data.session_gap_minutes:g} minutes.")
    st.metric("Items in window", f"{len(window.items)} of {l_tru}")
    st.metric("Sessions in window", window.sessions_in_window)
    st.metric("Time span of window", describe_span(window.time_span_seconds))
    if window.genre_mix:
        total = len(window.items)
        mix = pd.DataFrame([{"genre": g, "items": c, "share": c / total}
                            for g, c in window.genre_mix])
        st.caption("Genre mix of the window (an item counts once per genre)")
        st.dataframe(mix, hide_index=True, key="explorer-genres",
                     column_config={"share": st.column_config.NumberColumn(
                         "share", format="percent")})


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def window_table(window: SessionWindow) -> pd.DataFrame:
    items = [*window.items, *([window.next_item] if window.next_item else [])]
    rows = [{"film": item.position + 1, "title": item.title, "year": item.year,
             "genres": ", ".join(item.genres), "watched": when(item.timestamp),
             "session": item.session,
             "role": "window" if step <= len(window.items) else f"true next item ({NEVER_SEEN})"}
            for step, item in enumerate(items, start=1)]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["year"] = frame["year"].astype("Int64")  # unknown years stay empty, not NaN floats
    return frame


def embed(document: str) -> None:
    """st.iframe (Streamlit >= 1.5x); the deprecated components.v1.html on older versions."""
    if hasattr(st, "iframe"):
        st.iframe(document, height=GRAPH_HEIGHT + 60)
    else:  # pragma: no cover - older Streamlit
        import streamlit.components.v1 as components
        components.html(document, height=GRAPH_HEIGHT + 60)


controls, _ = st.columns([2, 1])
with controls:
    user = pick_user()
if user is None:
    st.stop()
set_current_user(user)
with controls:
    point = pick_point(user)

try:
    window = build_window(dataset, user, point, l_tru, studio.session_gap_seconds)
except (KeyError, ValueError) as exc:
    st.error(f"Cannot show this window: {exc}. Pick another user or point.")
    st.stop()

st.caption(f"User **{user}** watched {window.history_length} films. The window is films "
           f"{max(1, point - l_tru + 1)}–{point} (the last {l_tru} before the point). "
           + ("The dashed red box is the true next item; it is shown for error analysis "
              f"and was {NEVER_SEEN}." if window.next_item else
              "This is the end of the history: there is no next item."))
graph_col, stats_col = st.columns([5, 2])
with graph_col:
    try:
        document = session_graph_html(window.items, window.next_item, GRAPH_HEIGHT)
    except OfflineHTMLError as exc:
        st.error(f"The graph was not shown because it would load remote resources ({exc}). "
                 "Report this as a bug; the table below still lists the window.")
    else:
        with st.container(key="session-graph"):
            embed(document)
        st.caption("Drag nodes or the canvas, scroll to zoom, hover a node for its details.")
with stats_col:
    show_stats(window)

def film_place(film: HistoryFilm, sessions: list[HistorySession], window: SessionWindow) -> str:
    """Where a found film sits: "film 45 of 128, the 3rd of session 2 (in the window)"."""
    session = sessions[film.session - 1]
    nth = [f.position for f in session.films].index(film.position) + 1
    where = (" It is in the current window." if film.position in window_positions(window) else
             " It is the true next film at this point." if window.next_item is not None
             and film.position == window.next_item.position else "")
    return (f"**{md(film.title)}** is film {film.position + 1} of {window.history_length}, "
            f"the {ordinal(nth)} of session {film.session} ({len(session.films)} films).{where}")


def window_positions(window: SessionWindow) -> range:
    first = window.items[0].position if window.items else window.point
    return range(first, window.point)


def show_sessions(user: str, window: SessionWindow) -> None:
    """The whole history as sessions, with the window, the next film and a title search."""
    gap = studio.config.data.session_gap_minutes
    sessions = history_sessions(dataset, user, studio.session_gap_seconds)
    st.subheader("History by session")
    st.caption(f"A new session starts after {gap:g} minutes without a rating. User "
               f"{md(user)}'s {window.history_length} films form {len(sessions)} "
               f"session{'s' if len(sessions) != 1 else ''}; each film carries its number in the "
               "history, the scale of the point above.")
    query = st.text_input("Find a film in this history", key=keys.EXPLORER_SEARCH,
                          placeholder="Type part of a title, e.g. Star Wars",
                          help="Every film of this history whose title contains the text is "
                               "highlighted below, with its session and its number.")
    hits = find_films(sessions, query)
    with st.container(key="explorer-search"):
        if query.strip() and not hits:
            st.info(f"No film in user {md(user)}'s history has “{md(query.strip())}” in its "
                    "title.")
        for film in hits[:HITS_LISTED]:
            text, jump = st.columns([5, 1], vertical_alignment="center")
            text.markdown(film_place(film, sessions, window))
            jump.button("Window before it", key=keys.explorer_jump(film.position),
                        on_click=set_current_films, args=(user, max(1, film.position)),
                        disabled=film.position == 0,
                        help="Move the point so that this film is the true next one.")
        if len(hits) > HITS_LISTED:
            st.caption(f"…and {len(hits) - HITS_LISTED} more, highlighted below.")
    with st.container(key="explorer-sessions"):
        st.html(timeline_html(sessions, window_positions(window),
                              window.next_item.position if window.next_item else None,
                              [film.position for film in hits]))


show_sessions(user, window)

st.subheader("Window items")
st.dataframe(window_table(window), hide_index=True, key="explorer-window")

with st.expander("Details"):
    st.caption(f"Window length (`l_tru`): {l_tru} items. Sessions split at gaps over "
               f"{studio.config.data.session_gap_minutes:g} minutes. Dataset: {dataset.name}.")
    shown = [*window.items, *([window.next_item] if window.next_item else [])]
    st.dataframe(pd.DataFrame([{"film": i.position + 1, "title": i.title, "film id": i.item_id}
                               for i in shown]),
                 hide_index=True, key="explorer-window-ids")
