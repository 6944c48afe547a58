"""Static inline SVG for the offline report: the reasoning graph, rank-shift and deletion charts.

Words only: no node id, chain id or variable name reaches the markup (a node
without a title or intent is drawn unlabelled; chains are named by their
intent).

The report must open with no network and run no script, so its charts are
plain SVG drawn here rather than plotly (whose inlined bundle is 4.8 MB and
carries third-party links). Every piece of data (titles, intents, the LLM's
reasons) is ``html.escape``d before it goes into the markup; hover text uses
SVG ``<title>`` elements, which browsers show as plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import networkx as nx

from models.explain_schema import DeletionCurve
from reasoning.graph import EdgeKind
from reasoning.graph_nodes import candidates as candidate_records
from reasoning.graph_nodes import chain_records, graph_edges, node_record, node_text, session_items
from reasoning.graph_nodes import intents as intent_records
from reasonrec.report_rows import DOWN, SAME, UP, ShiftRow

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
FONT = 'font-family="sans-serif"'


def esc(value: object) -> str:
    """Escape text for HTML/SVG content and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: float, height: float, body: list[str], label: str,
         scroll: bool = False) -> str:
    # Scales down to the page width, never up (a small chart stays small); a wide graph
    # keeps its size and scrolls sideways instead, so its labels stay readable.
    size = f'width="{width:.0f}"' if scroll else (f'width="100%" '
                                                  f'style="max-width:{width:.0f}px"')
    svg = (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" {size} role="img" '
           f'aria-label="{esc(label)}" {FONT} font-size="12">' + "".join(body) + "</svg>")
    return f'<div style="overflow-x:auto">{svg}</div>' if scroll else svg


EDGE_WORDS = {EdgeKind.CHAIN: "reasoning chain", EdgeKind.DIVERGE: "divergent interest",
              EdgeKind.SEQUENCE: "watched next", "evidence": "evidence"}


def node_words(graph: nx.DiGraph, node: str) -> str:
    """A node in words: its title or interest text, never its id."""
    return node_text(graph, node)


def chain_names(graph: nx.DiGraph) -> dict[str, str]:
    """Chain id -> "chain N: <its intent>" (numbered in id order, as the graph lists them)."""
    return {c.id: f"chain {i}: {c.intent}" if c.intent else f"chain {i}"
            for i, c in enumerate(chain_records(graph), start=1)}


def graph_svg(graph: nx.DiGraph) -> str:
    """The prefix reasoning graph: session items in time order with chain arcs above,
    divergent intents below their chain end, candidate items below those."""
    session = session_items(graph)
    intents = sorted(i.id for i in intent_records(graph))
    candidates = [c.id for c in sorted(candidate_records(graph), key=lambda c: c.title)]
    chains = sorted({e.chain for e in graph_edges(graph, EdgeKind.CHAIN) if e.chain is not None})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(chains)}
    gap = 120
    width = max(len(session), len(intents), (len(candidates) + 1) // 2, len(chains) * 1.25, 4
                ) * gap + 80
    y_session, y_intent, y_cand = 150, 300, 430
    pos: dict[str, tuple[float, float]] = {}
    for i, item in enumerate(session):
        pos[item.id] = (60 + i * gap, y_session)
    for i, n in enumerate(intents):
        pos[n] = (60 + (i + 0.5) * (width - 120) / max(len(intents), 1), y_intent)
    for i, n in enumerate(candidates):   # two staggered rows so labels do not overlap
        step = (width - 120) / max(len(candidates), 1)
        pos[n] = (60 + (i + 0.5) * step, y_cand + (i % 2) * 40)
    body: list[str] = []
    for e in graph_edges(graph):
        u, v = e.source, e.target
        if u not in pos or v not in pos:
            continue
        (x1, y1), (x2, y2) = pos[u], pos[v]
        tip = f"{node_words(graph, u)} → {node_words(graph, v)}"
        tip_text = (f"{EDGE_WORDS.get(e.kind, 'link')}: {tip}"
                    + (f"\n{e.reason}" if e.reason else ""))
        if e.kind == EdgeKind.CHAIN:
            lift = 30 + 12 * abs(node_record(graph, v).step - node_record(graph, u).step)
            c = colour.get(str(e.chain), SAME)
            body.append(f'<path d="M{x1:.0f},{y1 - 14} Q{(x1 + x2) / 2:.0f},{y1 - 14 - lift} '
                        f'{x2:.0f},{y2 - 14}" fill="none" stroke="{c}" stroke-width="2.5">'
                        f"<title>{esc(tip_text)}</title></path>")
        elif e.kind == EdgeKind.SEQUENCE:
            body.append(f'<line x1="{x1 + 14:.0f}" y1="{y1}" x2="{x2 - 14:.0f}" y2="{y2}" '
                        f'stroke="#bbb" stroke-dasharray="3 3"/>')
        else:
            body.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                        f'stroke="#999" stroke-width="1" opacity="0.6">'
                        f"<title>{esc(tip_text)}</title></line>")
    for item in session:
        x, y = pos[item.id]
        c = colour.get(item.chain, SAME)
        title = node_words(graph, item.id)
        tip = f"{title} (film {item.step + 1} of the history window)"
        body.append(f'<circle cx="{x:.0f}" cy="{y}" r="13" fill="{c}">'
                    f"<title>{esc(tip)}</title></circle>"
                    f'<text x="{x:.0f}" y="{y + 30}" text-anchor="middle">{esc(_short(title, 16))}'
                    f"</text>")
    reasons = {i.id: i.reason for i in intent_records(graph)}
    for n in intents:
        x, y = pos[n]
        label = node_words(graph, n)
        reason = esc(reasons[n] or "")
        body.append(f'<rect x="{x - 50:.0f}" y="{y - 12}" width="100" height="24" rx="6" '
                    f'fill="#fff3e0" stroke="#ef6c00"><title>{esc(label)}\n'
                    f"{reason}</title></rect>"
                    f'<text x="{x:.0f}" y="{y + 4}" text-anchor="middle">{esc(_short(label, 15))}'
                    f"</text>")
    for n in candidates:
        x, y = pos[n]
        title = node_words(graph, n)
        body.append(f'<rect x="{x - 6:.0f}" y="{y - 6:.0f}" width="12" height="12" '
                    f'fill="#90caf9"><title>{esc(title)}</title></rect>'
                    f'<text x="{x:.0f}" y="{y + 20:.0f}" text-anchor="middle" font-size="10">'
                    f"{esc(_short(title, 14))}</text>")
    legend = ['<text x="20" y="24" font-weight="bold">Chains:</text>']
    names = chain_names(graph)
    for i, c in enumerate(chains):
        legend.append(f'<rect x="{90 + i * 150}" y="12" width="14" height="14" '
                      f'fill="{colour[c]}"/><text x="{108 + i * 150}" y="24">'
                      f"{esc(_short(names.get(c, ''), 20))}<title>{esc(names.get(c, ''))}"
                      "</title></text>")
    legend.append('<text x="20" y="48" fill="#555">circles: session items (time order); '
                  'orange boxes: divergent intents; blue squares: candidate items</text>')
    return _svg(width, y_cand + 80, legend + body, "reasoning graph", scroll=True)


def slope_svg(rows: Sequence[ShiftRow], k: int, counterfactual: bool = False) -> str:
    """Rank-shift slope chart: base -> fused (-> after the removal); ranks > k on one row."""
    columns = ["Base model", "With reasoning"] + (["After removal"] if counterfactual else [])
    col_gap, row_h, top, left = 200, 26, 40, 50
    width = left + col_gap * (len(columns) - 1) + 300
    height = top + row_h * (k + 1) + 20

    def y(rank: int | None) -> float:
        return top + row_h * ((k + 1 if rank is None or rank > k else rank) - 1)

    body = [f'<text x="{left + i * col_gap}" y="20" text-anchor="middle" font-weight="bold">'
            f"{esc(c)}</text>" for i, c in enumerate(columns)]
    for r in range(1, k + 2):
        tick = str(r) if r <= k else f"&gt;{k}"
        body.append(f'<text x="10" y="{y(r) + 4:.0f}" fill="#777">{tick}</text>')
    for row in rows:
        ranks = [row.base_rank, row.fused_rank] + ([row.after_rank] if counterfactual else [])
        moved = (ranks[0] or k + 1) - (ranks[-1] or k + 1)
        c = UP if moved > 0 else DOWN if moved < 0 else SAME
        points = " ".join(f"{left + i * col_gap},{y(r):.0f}" for i, r in enumerate(ranks))
        tip = f"{row.title}: " + ", ".join(
            f"{col} {r if r is not None else '>' + str(k)}" for col, r in zip(columns, ranks))
        body.append(f'<polyline points="{points}" fill="none" stroke="{c}" stroke-width="2">'
                    f"<title>{esc(tip)}</title></polyline>")
        for i, r in enumerate(ranks):
            body.append(f'<circle cx="{left + i * col_gap}" cy="{y(r):.0f}" r="4" fill="{c}"/>')
        if ranks[-1] is not None and ranks[-1] <= k:
            body.append(f'<text x="{left + (len(ranks) - 1) * col_gap + 10}" '
                        f'y="{y(ranks[-1]) + 4:.0f}">{esc(_short(row.title, 40))}</text>')
    return _svg(width, height, body, "rank shift chart")


def deletion_svg(curve: DeletionCurve) -> str:
    """The item's rank as its paths are removed, explanation order (solid) vs random (dotted)."""
    series = [[curve.start_rank, *curve.explanation_ranks],
              [curve.start_rank, *curve.random_ranks]]
    n = len(series[0])
    worst = max(max(s) for s in series)
    width, height, pad = 420, 150, 30

    def xy(i: int, rank: float) -> str:
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        yv = pad + (height - 2 * pad) * ((rank - 1) / max(worst - 1, 1))
        return f"{x:.0f},{yv:.0f}"

    body = [f'<text x="{pad}" y="16" fill="#555">rank (1 at top) as paths are removed; '
            f"solid: explanation order, dotted: random</text>"]
    for s, dash, c in zip(series, ("", ' stroke-dasharray="4 3"'), ("#1f77b4", "#ff7f0e")):
        body.append(f'<polyline points="{" ".join(xy(i, r) for i, r in enumerate(s))}" '
                    f'fill="none" stroke="{c}" stroke-width="2"{dash}/>')
    body.append(f'<text x="{pad}" y="{height - 6}" fill="#777">0 … {n - 1} paths; '
                f"worst rank {worst:g}</text>")
    return _svg(width, height, body, "deletion curve")
