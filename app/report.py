"""The stakeholder export: a self-contained offline HTML report and its JSON (views only).

The report is one HTML file with no script and nothing to fetch: inline CSS,
inline SVG charts (``app.components.report_svg``) and a Content-Security-Policy
that forbids any load or script, so it opens the same with no network. Titles
and the LLM's texts are untrusted: every one is ``html.escape``d.

The JSON export is the explainer's :class:`~models.explain_schema.Explanation`
(as ``reasonrec explain --json`` writes it) plus the counterfactual state the
analyst had set: what was switched off and the resulting top-k.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import networkx as nx

from app.components.effect_charts import branch_rows, shift_rows
from app.components.report_svg import deletion_svg, esc, graph_svg, slope_svg
from models.explain_schema import Counterfactual, Explanation, ItemExplanation, RankedItem

REPORT_SCHEMA = "reasonrec.report"
REPORT_VERSION = 1
# Nothing may load or run: no script at all, styles and images only inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_REMOTE = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
                     re.IGNORECASE)
_CSS = """
body{font-family:sans-serif;margin:24px auto;max-width:1200px;color:#222;line-height:1.4}
h1{margin-bottom:0}.muted{color:#666}table{border-collapse:collapse;margin:8px 0;width:100%}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f5f5f5}.lists{display:flex;gap:24px}.lists>div{flex:1}
.up{color:#2e7d32}.down{color:#c62828}.card{border:1px solid #ccc;border-radius:8px;
padding:12px;margin:14px 0}.bar{display:inline-block;height:10px;background:#1f77b4}
.bar.neg{background:#c62828}.path{margin:6px 0 10px 0}.reason{color:#444;font-style:italic}
.chip{display:inline-block;background:#eee;border-radius:4px;padding:0 4px;margin:0 2px}
"""


@dataclass
class CounterfactualState:
    """What the analyst switched off on the page, and the fused top-k that resulted."""

    chains: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    result: Counterfactual | None = None

    @property
    def active(self) -> bool:
        return bool(self.chains or self.nodes or self.items)

    def to_json(self) -> dict[str, Any]:
        return {"chains": self.chains, "nodes": self.nodes, "items": self.items,
                "result": None if self.result is None else self.result.model_dump(mode="json")}


@dataclass
class ReportInput:
    """Everything one report shows: the explanation, the prefix graph and the counterfactual."""

    explanation: Explanation
    graph: nx.DiGraph
    counterfactual: CounterfactualState = field(default_factory=CounterfactualState)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc)
                         .strftime("%Y-%m-%d %H:%M UTC"))


class ReportNotOfflineError(ValueError):
    """The generated report would load something from the network."""


def report_json(data: ReportInput) -> str:
    """The JSON export: the ``Explanation`` (by alias, as the CLI writes it) and the
    counterfactual state. :func:`read_report_json` reads it back."""
    return json.dumps({"schema": REPORT_SCHEMA, "version": REPORT_VERSION,
                       "created": data.created,
                       "explanation": data.explanation.model_dump(mode="json", by_alias=True),
                       "counterfactual": data.counterfactual.to_json()}, indent=2)


def read_report_json(text: str) -> tuple[Explanation, CounterfactualState]:
    """Parse and validate a JSON export."""
    raw = json.loads(text)
    if raw.get("schema") != REPORT_SCHEMA:
        raise ValueError(f"not a {REPORT_SCHEMA} export")
    cf = raw["counterfactual"]
    result = None if cf["result"] is None else Counterfactual.model_validate(cf["result"])
    return (Explanation.model_validate(raw["explanation"]),
            CounterfactualState(list(cf["chains"]), list(cf["nodes"]), list(cf["items"]), result))


def check_report_offline(document: str) -> None:
    """Raise :class:`ReportNotOfflineError` if ``document`` would fetch anything remote."""
    match = _REMOTE.search(document)
    if match:
        raise ReportNotOfflineError("report would load a remote resource near: "
                                    + document[max(0, match.start() - 40): match.end() + 60])


def _shift_cell(shift: int) -> str:
    if shift > 0:
        return f'<span class="up">▲ {shift}</span>'
    if shift < 0:
        return f'<span class="down">▼ {-shift}</span>'
    return "="


def _ranked_table(rows: list[RankedItem], other: str) -> str:
    head = (f"<tr><th>#</th><th>title</th><th>item</th><th>score</th><th>{esc(other)}</th>"
            "<th>shift</th></tr>")
    body = "".join(f"<tr><td>{r.rank}</td><td>{esc(r.title)}</td><td>{esc(r.item_id)}</td>"
                   f"<td>{r.score:.4f}</td><td>{r.other_rank}</td>"
                   f"<td>{_shift_cell(r.rank_shift)}</td></tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _bars(explanation: Explanation) -> str:
    rows = []
    scale = max((abs(e.delta_score) for b in explanation.branch_effects
                 for e in b.zeroed.values()), default=0.0) or 1.0
    for b in explanation.branch_effects:
        cells = []
        for r in branch_rows(b):
            value = r["contribution"]
            width = int(120 * abs(value) / scale)
            cells.append(f'<td><span class="bar{" neg" if value < 0 else ""}" '
                         f'style="width:{width}px"></span> {value:+.3f} '
                         f'<span class="muted">(rank {r["delta_rank_if_zeroed"]:+d} if zeroed)'
                         "</span></td>")
        rows.append(f"<tr><td>{b.rank}</td><td>{esc(b.title)}</td>{''.join(cells)}</tr>")
    names = [r["branch"] for r in branch_rows(explanation.branch_effects[0])] \
        if explanation.branch_effects else []
    head = "<tr><th>#</th><th>item</th>" + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _path_html(path: Any) -> str:
    e = path.effect
    nodes = " → ".join(f'<span class="chip">{esc(n.label)}</span>' for n in path.nodes)
    edges = "".join(
        f"<li>{esc(edge.kind)} {esc(edge.source)} → {esc(edge.target)}"
        + (f': <span class="reason">{esc(edge.reason)}</span>' if edge.reason else "")
        + (f" (verification {edge.score:.2f})" if edge.score is not None else "") + "</li>"
        for edge in path.edges)
    near = (f" (nearest candidate, cosine {path.similarity:.2f})"
            if path.ends_at == "nearest_divergent" and path.similarity is not None else "")
    return (f'<div class="path"><b>{esc(path.kind)} path {esc(path.id)}</b>{esc(near)}: '
            f"removing it changes the score by {e.delta_score:+.4f} and the rank by "
            f"{e.delta_rank:+d} (to {e.rank_after}{'' if e.in_top_k_after else ', out of top-k'})"
            f"<div>{nodes}</div><ul>{edges}</ul></div>")


def _item_card(item: ItemExplanation) -> str:
    d, f = item.deletion, item.fidelity
    faster = "n/a (fewer than 2 paths)" if d.faster is None else ("yes" if d.faster else "no")
    paths = "".join(_path_html(p) for p in item.paths) or "<p>No reasoning path reaches it.</p>"
    return (f'<div class="card"><h3>#{item.rank} {esc(item.title)} '
            f'<span class="muted">(item {esc(item.item_id)}, score {item.score:.4f})</span></h3>'
            f"{paths}<h4>Faithfulness</h4><table><tr><th>deletion area: explanation</th>"
            f"<th>random ({d.random_orders} orders)</th><th>explanation faster</th>"
            f"<th>fidelity+</th><th>fidelity−</th><th>paths in explanation</th></tr>"
            f"<tr><td>{d.area_explanation:.1f}</td><td>{d.area_random:.1f}</td><td>{faster}</td>"
            f"<td>{f.plus:.2f}</td><td>{f.minus:.2f}</td><td>{f.explanation_paths}</td></tr>"
            f"</table>{deletion_svg(d)}</div>")


def _counterfactual_html(state: CounterfactualState) -> str:
    if not state.active or state.result is None:
        return "<p>Nothing switched off: the lists above are the original ones.</p>"
    cf = state.result
    off = ", ".join(esc(x) for x in [*state.chains, *state.nodes]) or "none"
    items = ", ".join(esc(x) for x in state.items) or "none"
    entered = ", ".join(esc(i.title) for i in cf.entered) or "none"
    left = ", ".join(esc(i.title) for i in cf.left) or "none"
    return (f"<p>Switched off chains/nodes: {off}; session items: {items}.</p>"
            f"<p><b>Entered:</b> {entered}<br><b>Left:</b> {left}</p>"
            + _ranked_table(cf.top_k, "rank before"))


def report_html(data: ReportInput) -> str:
    """The whole offline report as one HTML document (checked offline before it is returned)."""
    x = data.explanation
    cf = data.counterfactual
    rows = shift_rows(x.top_k, cf.result if cf.active else None)
    p = x.point
    faith = x.faithfulness

    def num(value: float | None, fmt: str = ".2f") -> str:
        return "n/a" if value is None else format(value, fmt)

    summary = (f"<table><tr><th>explained items</th><th>items with ≥2 paths</th>"
               f"<th>share where explanation order is faster than random</th>"
               f"<th>fidelity+</th><th>fidelity−</th></tr><tr><td>{len(x.items)}</td>"
               f"<td>{faith.items_compared}</td><td>{num(faith.share_faster)}</td>"
               f"<td>{num(faith.fidelity_plus)}</td><td>{num(faith.fidelity_minus)}</td></tr>"
               "</table>")
    prov = x.provenance
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>ReasonRec report: user {esc(x.user)}</title><style>{_CSS}</style></head>
<body>
<h1>ReasonRec report: user {esc(x.user)}</h1>
<p class="muted">{esc(x.dataset)} · window step {p.step} of {p.steps} ({esc(p.role)} target) ·
history length {p.history_length} · created {esc(data.created)}</p>
<p>True next item (never seen by the models): <b>{esc(p.target.title)}</b>, ranked
{p.target_rank_base} by the base model and {p.target_rank_fused} by the fused model.</p>
<p class="muted">Base model {esc(prov.base_model)} ({esc(prov.base_run)}); fused
{esc(prov.fusion_variant)} ({esc(prov.fusion_run)}); graphs from {esc(prov.graph_source)},
built by {esc(prov.graph_backend)}.</p>
<h2>Reasoning graph</h2>{graph_svg(data.graph)}
<h2>Top-{x.k}: base and fused</h2>
<div class="lists"><div><h3>Base</h3>{_ranked_table(x.top_k.base, "fused rank")}</div>
<div><h3>Fused</h3>{_ranked_table(x.top_k.fused, "base rank")}</div></div>
<h2>Rank shift</h2>{slope_svg(rows, x.k, counterfactual=cf.active and cf.result is not None)}
<h2>Counterfactual</h2>{_counterfactual_html(cf)}
<h2>Branch contributions (E_ori / E_div)</h2>
<p class="muted">Score each fused top-k item loses when the branch's vector is zeroed.</p>
{_bars(x)}
<h2>Faithfulness</h2>{summary}
<h2>Explanations</h2>{"".join(_item_card(i) for i in x.items)}
</body></html>
"""
    check_report_offline(document)
    return document
