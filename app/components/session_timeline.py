"""The Session explorer's history by session: HTML that a page shows with ``st.html``.

Every film of the history is a chip, numbered on the app's one scale (film N of the
history), grouped in its session; the chips of the current window, the true next film
and the films a search found are marked. HTML flow layout wraps the chips, so no two
labels overlap at any width. Titles are untrusted: each goes through ``html.escape``,
and the document carries no script (``st.html`` would ignore one anyway).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from importlib import resources

from reasonrec.session_window import HistorySession, describe_span

LEGEND = ('<div class="rr-legend"><span><i class="rr-swatch" style="background:#fdecef;'
          'border-color:#e4405f"></i>in the window</span><span><i class="rr-swatch" '
          'style="border:2px dashed #d62728"></i>true next film</span><span><i class="rr-swatch"'
          ' style="background:#ffe58a;border-color:#d99a00"></i>found by the search</span><span '
          'style="color:#999">grey: after the point (not yet watched there)</span></div>')


def timeline_css() -> str:
    return resources.files("assets").joinpath("styles/session_timeline.css").read_text("utf-8")


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%d %b %Y, %H:%M UTC")


def session_heading(session: HistorySession) -> str:
    """"Session 3 · 07 Nov 1997, 07:35 UTC · 12 films over 14 min" (plain text)."""
    films = session.films
    count = f"{len(films)} film" + ("" if len(films) == 1 else "s")
    over = f" over {describe_span(session.span_seconds)}" if len(films) > 1 else ""
    return f"Session {session.number} · {_day(films[0].timestamp)} · {count}{over}"


def timeline_html(sessions: Sequence[HistorySession], window: range, next_position: int | None,
                  hits: Collection[int] = ()) -> str:
    """The sessions as chips. ``window``: the window's 0-based history positions;
    ``next_position``: the true next film's (None at the end); ``hits``: positions found."""
    found = set(hits)
    blocks = []
    for session in sessions:
        positions = {f.position for f in session.films}
        classes = ["rr-session"]
        if positions & set(window):
            classes.append("rr-has-window")
        if positions & found:
            classes.append("rr-has-hit")
        chips = []
        for film in session.films:
            marks = ["rr-film"]
            if film.position in window:
                marks.append("rr-window")
            elif film.position == next_position:
                marks.append("rr-next")
            elif next_position is not None and film.position > next_position:
                marks.append("rr-after")
            if film.position in found:
                marks.append("rr-hit")
            title = html.escape(film.title)
            year = f" ({film.year})" if film.year else ""
            chips.append(f'<li class="{" ".join(marks)}" data-film="{film.position + 1}" '
                         f'title="film {film.position + 1}: {title}{year}">'
                         f'<span class="rr-step">{film.position + 1}</span>{title}</li>')
        head = html.escape(session_heading(session)).replace(
            f"Session {session.number}", f"<b>Session {session.number}</b>", 1)
        blocks.append(f'<div class="{" ".join(classes)}" data-session="{session.number}">'
                      f'<div class="rr-session-head">{head}</div>'
                      f'<ol class="rr-films">{"".join(chips)}</ol></div>')
    return (f"<style>{timeline_css()}</style>{LEGEND}"
            f'<div class="rr-timeline">{"".join(blocks)}</div>')
