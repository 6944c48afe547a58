"""Plotly figures and table rows for the Recommendations-and-effect page (views only).

Everything here reshapes the explainer's pydantic outputs (``models.explain_schema``)
for drawing; no score is computed here. Ranks beyond the top-k are drawn on one
"below top-k" row (``k + 1``) with the exact rank, when the explainer gave one, in
the hover text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from reasonrec.explain_api import BranchEffects, Counterfactual, DeletionCurve, RankedItem
# The rows live below the app: the offline report (reasonrec.report) draws them too.
from reasonrec.report_rows import DOWN, SAME, UP, ShiftRow, shift_rows  # noqa: F401

BRANCH_LABELS = {"ori": "E_ori (chains)", "div": "E_div (divergent intents)"}


def ranked_table(rows: Sequence[RankedItem], other: str) -> list[dict[str, Any]]:
    """Table rows for a top-k list; ``other`` names the other model's rank column. No film
    ids: they are identifiers, listed by :func:`film_id_rows` in the Details expander."""
    return [{"rank": r.rank, "title": r.title, "score": round(r.score, 4),
             other: r.other_rank, "shift": _arrow(r.rank_shift)} for r in rows]


def film_id_rows(*lists: Sequence[RankedItem]) -> list[dict[str, Any]]:
    """Each film of the given lists once, with its dataset id (for the Details expander)."""
    seen: dict[int, dict[str, Any]] = {}
    for rows in lists:
        for r in rows:
            seen.setdefault(r.index, {"title": r.title, "film id": r.item_id})
    return list(seen.values())


def _arrow(shift: int) -> str:
    return f"▲ {shift}" if shift > 0 else f"▼ {-shift}" if shift < 0 else "="


def _clip(rank: int | None, k: int) -> int:
    return k + 1 if rank is None or rank > k else rank


def _rank_text(rank: int | None, k: int) -> str:
    if rank is None:
        return f"below top-{k}"
    return f"{rank}" if rank <= k else f"{rank} (below top-{k})"


def rank_shift_figure(rows: Sequence[ShiftRow], k: int, *, selected: int | None = None,
                      counterfactual: bool = False) -> go.Figure:
    """Slope chart base rank -> fused rank (-> after the removal); item index in ``customdata``.

    A handful of traces, not one per item: the browser redraws this chart on every
    counterfactual toggle, and plotly's cost grows with the trace count. One line
    trace per colour (items separated by gaps), then one point trace that carries
    the labels, hover text and the item index of every point (what a selection
    returns).

    Titles are data: plotly interprets a small HTML subset (``<b>``, ``<a href>``)
    in ``text`` and hover text, so every title goes through :func:`plain` first.
    """
    columns = ["Base", "Fused"] + (["After removal"] if counterfactual else [])
    lines: dict[str, tuple[list[Any], list[Any]]] = {UP: ([], []), DOWN: ([], []), SAME: ([], [])}
    points: dict[str, list[Any]] = {"x": [], "y": [], "text": [], "hover": [], "item": [],
                                    "size": [], "colour": []}
    for row in rows:
        ranks = [row.base_rank, row.fused_rank] + ([row.after_rank] if counterfactual else [])
        last = ranks[-1]
        moved = (ranks[0] or k + 1) - (last or k + 1)
        colour = UP if moved > 0 else DOWN if moved < 0 else SAME
        title = plain(row.title)
        xs, ys = lines[colour]
        xs.extend([*columns, None])
        ys.extend([*(_clip(r, k) for r in ranks), None])
        for position, (column, rank) in enumerate(zip(columns, ranks)):
            points["x"].append(column)
            points["y"].append(_clip(rank, k))
            # label only the items in the last column's top-k: the ">k" row would be a pile
            label = position == len(columns) - 1 and last is not None and last <= k
            points["text"].append(_short(title) if label else "")
            points["hover"].append(f"{title}<br>{column}: {_rank_text(rank, k)}")
            points["item"].append(row.index)
            points["size"].append(13 if row.index == selected else 9)
            points["colour"].append(colour)
    fig = go.Figure()
    for colour, (xs, ys) in lines.items():
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 2},
                                     hoverinfo="skip", showlegend=False))
    chosen = [i for i, item in enumerate(points["item"]) if item == selected]
    if len(chosen) > 1:  # the selected item's line drawn thicker, on top
        fig.add_trace(go.Scatter(x=[points["x"][i] for i in chosen],
                                 y=[points["y"][i] for i in chosen], mode="lines",
                                 line={"color": points["colour"][chosen[0]], "width": 4},
                                 hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=points["x"], y=points["y"], mode="markers+text", text=points["text"],
        textposition="middle right", textfont={"size": 11}, customdata=points["item"],
        marker={"size": points["size"], "color": points["colour"]},
        hovertext=points["hover"], hoverinfo="text", showlegend=False, name="items"))
    fig.update_yaxes(autorange="reversed", tickvals=list(range(1, k + 2)),
                     ticktext=[str(i) for i in range(1, k + 1)] + [f">{k}"], title="rank")
    fig.update_xaxes(range=[-0.3, len(columns) - 1 + 1.2])
    fig.update_layout(height=80 + 34 * (k + 1), margin={"l": 40, "r": 10, "t": 30, "b": 30},
                      clickmode="event+select", dragmode=False,
                      title={"text": "Rank shift (select an item to explain it)", "x": 0})
    return fig


def plain(text: str) -> str:
    """Text safe for plotly's text fields: its HTML subset (tags, entities) is neutralised."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def selected_item(selection: Any) -> int | None:
    """The item index of the last point selected in the rank-shift chart, if any.

    ``selection`` is the chart's widget state (``st.session_state[key]``), a
    mapping ``{"selection": {"points": [{"customdata": ...}, ...]}}``.
    """
    if not selection:
        return None
    inner = selection.get("selection") if isinstance(selection, Mapping) else None
    points = (inner or {}).get("points") or []
    for point in reversed(list(points)):
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            try:
                return int(data)
            except (TypeError, ValueError):
                continue
    return None


def branch_rows(effects: BranchEffects) -> list[dict[str, Any]]:
    """One row per zeroed branch: its contribution (score lost without it) and the rank change."""
    return [{"branch": BRANCH_LABELS.get(name, name),
             "contribution": -e.delta_score, "delta_score_if_zeroed": e.delta_score,
             "delta_rank_if_zeroed": e.delta_rank, "rank_if_zeroed": e.rank_after,
             "in_top_k_if_zeroed": e.in_top_k_after}
            for name, e in sorted(effects.zeroed.items())]


def branch_figure(effects: BranchEffects) -> go.Figure:
    """E_ori / E_div contribution bars: the score the item loses when the branch is zeroed."""
    rows = branch_rows(effects)
    values = [r["contribution"] for r in rows]
    fig = go.Figure(go.Bar(
        x=values, y=[r["branch"] for r in rows], orientation="h",
        marker_color=[UP if v >= 0 else DOWN for v in values],
        text=[f"{v:+.3f} (rank {r['delta_rank_if_zeroed']:+d} if zeroed)"
              for v, r in zip(values, rows)], textposition="auto"))
    fig.update_layout(height=170, margin={"l": 10, "r": 10, "t": 30, "b": 30},
                      title={"text": "Branch contributions", "x": 0})
    return fig


def deletion_figure(curve: DeletionCurve) -> go.Figure:
    """The item's rank as its paths are removed: explanation order against random orders."""
    xs = list(range(len(curve.explanation_ranks) + 1))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[curve.start_rank, *curve.explanation_ranks],
                             mode="lines+markers", name="explanation order"))
    fig.add_trace(go.Scatter(x=xs, y=[curve.start_rank, *curve.random_ranks],
                             mode="lines+markers", name=f"random ({curve.random_orders} orders)",
                             line={"dash": "dot"}))
    fig.update_yaxes(autorange="reversed", title="rank")
    fig.update_xaxes(title="paths removed", dtick=1)
    fig.update_layout(height=240, margin={"l": 10, "r": 10, "t": 30, "b": 30},
                      title={"text": "Deletion curve", "x": 0})
    return fig


def entered_left(counterfactual: Counterfactual) -> tuple[list[str], list[str]]:
    """Titles that entered and left the fused top-k."""
    return ([i.title for i in counterfactual.entered], [i.title for i in counterfactual.left])
