"""The Session explorer's history by session: sessions from the data, the search, and HTML
that escapes every title and marks the window, the next film and the films found."""

from __future__ import annotations

import html
import re
from pathlib import Path

from app.components.session_timeline import timeline_html
from reasonrec.session_window import find_films, history_sessions
from models.data import Dataset, load_dataset
from tests.app.hostile_data import HOSTILE_TITLES, HOSTILE_USER, write_hostile_dataset

GAP = 30 * 60.0


def test_sessions_cover_the_history_in_order_with_the_data_sessions(ml100k: Dataset) -> None:
    user = "69"   # 65 films in 4 sessions at a 30-minute gap
    sessions = history_sessions(ml100k, user, GAP)
    expected = ml100k.sessions(user, GAP)
    assert [len(s.films) for s in sessions] == [len(p) for p in expected] == [15, 23, 12, 15]
    films = [f for s in sessions for f in s.films]
    assert [f.position for f in films] == list(range(len(ml100k.history(user))))
    assert [f.title for f in films] == [ml100k.catalogue[int(i)].display_name
                                        for i in ml100k.history(user)]
    times = ml100k.timestamps[ml100k.user_index(user)]
    for before, after in zip(sessions, sessions[1:]):   # the rule the page states
        assert after.films[0].timestamp - before.films[-1].timestamp > GAP
    for session in sessions:
        gaps = [b.timestamp - a.timestamp for a, b in zip(session.films, session.films[1:])]
        assert all(g <= GAP for g in gaps) and session.films[0].timestamp == times[
            session.films[0].position]


def test_search_finds_every_title_containing_the_text(ml100k: Dataset) -> None:
    sessions = history_sessions(ml100k, "69", GAP)
    found = find_films(sessions, "  STAR ")
    assert [(f.title, f.position + 1, f.session) for f in found] == [
        ("Star Wars", 16, 2), ("Lone Star", 25, 2), ("Star Trek: First Contact", 34, 2)]
    assert find_films(sessions, "") == [] and find_films(sessions, "no such film") == []


def test_timeline_marks_window_next_and_hits_and_escapes_titles(tmp_path: Path) -> None:
    dataset = load_dataset(write_hostile_dataset(tmp_path / "hostile"))
    sessions = history_sessions(dataset, HOSTILE_USER, GAP)
    assert [len(s.films) for s in sessions] == [6, 1]    # a two-hour gap before the last film
    document = timeline_html(sessions, range(2, 5), 5, hits=[1])
    for title in HOSTILE_TITLES:
        assert title not in document and html.escape(title) in document
    assert not re.search(r"<(?:script|img|a|svg)\b", document)
    marks = dict(re.findall(r'<li class="([^"]+)" data-film="(\d+)"', document)[i][::-1]
                 for i in range(7))
    assert marks["2"] == "rr-film rr-hit"
    assert all(marks[str(n)] == "rr-film rr-window" for n in (3, 4, 5))
    assert marks["6"] == "rr-film rr-next" and marks["7"] == "rr-film rr-after"
    assert document.count('class="rr-session rr-has-window rr-has-hit"') == 1
