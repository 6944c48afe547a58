"""The session-graph HTML builder: offline, escaped, next item marked."""

from __future__ import annotations

import pytest

from app.graph_html import (
    NEVER_SEEN,
    GraphItem,
    OfflineHTMLError,
    check_offline,
    genre_color,
    graph_nodes,
    load_style,
    serpentine,
    session_graph_html,
    strip_cdn,
    tooltip_html,
)
from tests.app.hostile_data import HOSTILE_GENRE, IMG_TITLE, SCRIPT_TITLE


def item(position: int, title: str = "Movie", genres: tuple[str, ...] = ("Drama",),
         session: int = 1, year: int | None = 1995) -> GraphItem:
    return GraphItem(position=position, item_id=str(position + 1), title=title, year=year,
                     genres=genres, timestamp=1e9 + 60 * position, session=session)


def test_document_is_offline_and_has_no_cdn_tags() -> None:
    document = session_graph_html([item(0), item(1)], item(2))
    check_offline(document)
    assert "cdn.jsdelivr.net" not in document and "cdnjs.cloudflare.com" not in document
    assert "vis.Network" in document  # vis-network is inlined
    assert "<h1>" not in document  # pyvis's empty heading is gone


@pytest.mark.parametrize("remote", [
    '<script src="https://cdn.example/x.js"></script>',
    "<link rel='stylesheet' href='//cdn.example/x.css'>",
    '<style>div { background: url( "http://cdn.example/a.png") }</style>',
    '<style>@import "https://cdn.example/a.css";</style>',
    '<img src=http://cdn.example/a.png>',
])
def test_check_offline_refuses_remote_loads(remote: str) -> None:
    with pytest.raises(OfflineHTMLError):
        check_offline(f"<html><head>{remote}</head></html>")


def test_strip_cdn_removes_multiline_tags() -> None:
    raw = ('<html><head><link\n  href="https://cdn.jsdelivr.net/b.css"\n  rel="stylesheet"\n/>'
           '<script\n src="https://cdn.jsdelivr.net/b.js"\n crossorigin="anonymous"\n></script>'
           "<script>var keep = 1;</script></head></html>")
    stripped = strip_cdn(raw)
    check_offline(stripped)
    assert "var keep = 1;" in stripped


def test_tooltips_escape_every_data_field() -> None:
    tip = tooltip_html(item(0, SCRIPT_TITLE, (HOSTILE_GENRE,)), step=1)
    assert "<script>" not in tip and "<svg" not in tip
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in tip
    assert "&lt;svg/onload=window.__xss=1&gt;" in tip
    next_tip = tooltip_html(item(3, IMG_TITLE, ()), step=None, is_next=True)
    assert "<img" not in next_tip and NEVER_SEEN.capitalize() in next_tip


def test_nodes_time_order_colours_and_next_item() -> None:
    window = [item(0, "A", ("Comedy",)), item(1, "B", ("Nope", "Drama")),
              item(2, "C", ("Nope",), session=2)]
    document = session_graph_html(window, item(3, IMG_TITLE, ("Action",), session=2))
    nodes = graph_nodes(document)
    assert [n["label"].split(". ", 1)[1] for n in nodes[:3]] == ["A", "B", "C"]
    style = load_style()
    assert nodes[0]["color"] == style["genre_palette"]["Comedy"]
    assert nodes[1]["color"] == style["genre_palette"]["Drama"]  # first known genre
    assert nodes[2]["color"] == style["fallback_color"] == genre_color(["Nope"])
    assert [n["x"] for n in nodes] == sorted(n["x"] for n in nodes)  # one row, in time order
    next_node = nodes[-1]
    assert next_node["id"] == "next" and next_node["role"] == "next"
    assert NEVER_SEEN in next_node["label"]
    assert next_node["shape"] != nodes[0]["shape"]
    assert next_node["shapeProperties"]["borderDashes"]
    # The cross-session edge is dashed; the in-session one is not.
    assert '"dashes": [6, 6]' in document


def test_end_of_history_has_no_next_node() -> None:
    nodes = graph_nodes(session_graph_html([item(0), item(1)], None))
    assert [n["role"] for n in nodes] == ["window", "window"]


def test_serpentine_layout_reads_in_time_order() -> None:
    style = load_style()
    per_row, dx, dy = style["per_row"], style["x_spacing"], style["y_spacing"]
    positions = [serpentine(step, style) for step in range(1, 2 * per_row + 2)]
    assert positions[0] == (0, 0) and positions[per_row - 1] == ((per_row - 1) * dx, 0)
    assert positions[per_row] == ((per_row - 1) * dx, dy)  # the next row runs back
    assert positions[2 * per_row - 1] == (0, dy)
    assert positions[2 * per_row] == (0, 2 * dy)
