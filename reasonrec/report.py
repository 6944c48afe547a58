"""The stakeholder report: one offline HTML file, and the analyst's JSON behind it.

``reasonrec report`` and the app's export both call :func:`report_input` then
:func:`report_html`, so for the same user, point and fused model they write
the same file (only the creation time differs).

The HTML's first page holds what a stakeholder asks: the user, the top 5 with
each item's one-sentence reason (the explainer's ``ItemExplanation.summary``),
where the film the user really watched next was ranked, and what the
reasoning changed (items that entered or left the top 5 and top 10 when every
reasoning chain and interest is removed). "Details" follow
(``reasonrec.report_sections``): paths with their evidence and measured
effects, the graph, deletion curves, provenance in plain words.

The file runs no script and loads nothing: inline CSS, inline SVG
(``reasonrec.report_svg``) and a Content-Security-Policy that forbids any load.
No internal path, run folder, node id or variable name is written to it; the
JSON export keeps all of them (run folders included) for the analyst. Titles
and the LLM's texts are untrusted: every one is ``html.escape``d.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from models.explain_schema import Counterfactual, Explanation, ItemRef
from reasonrec.report_sections import details_html, first_page_html

if TYPE_CHECKING:
    from models.explain import ExplainPoint, Explainer

REPORT_SCHEMA = "reasonrec.report"
#: 2 added the reasoning change and the provenance in words (#18); version 1 still reads.
REPORT_VERSION = 2
FIRST_PAGE = 5                      # items on the first page
CHANGE_SIZES = (5, 10)              # top-n lists whose entries and exits the report names
# Nothing may load or run: no script at all, styles and images only inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_REMOTE = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
                     re.IGNORECASE)
_RUN_ID = re.compile(r"(\d{4})(\d{2})(\d{2})-\d{6}-[0-9a-f]+")
_CSS = """
body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.45;
padding:0 16px}h1{margin-bottom:4px}.muted{color:#666}
table{border-collapse:collapse;margin:8px 0;width:100%}
th,td{border:1px solid #ddd;padding:5px 7px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f5f5f5}.lists{display:flex;gap:24px}.lists>div{flex:1}
.up{color:#2e7d32}.down{color:#c62828}.card{border:1px solid #ccc;border-radius:8px;
padding:12px;margin:14px 0}.path{margin:8px 0 12px 0}.reason{color:#444;font-style:italic}
.chip{display:inline-block;background:#eee;border-radius:4px;padding:0 4px;margin:1px 2px}
.first{page-break-after:always;border-bottom:3px solid #333;padding-bottom:12px}
.target{background:#f3f7ff;border-left:4px solid #1f77b4;padding:8px 12px}
.change{background:#fafafa;border-left:4px solid #888;padding:8px 12px}
summary{cursor:pointer;color:#1f4f99}
"""


@dataclass
class CounterfactualState:
    """What the analyst switched off on the page (graph ids), and the fused top-k that resulted."""

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


@dataclass(frozen=True)
class RankChange:
    """An item that entered or left a top-n list because of the reasoning."""

    item: ItemRef
    rank_with: int        # the recommended ranking (with every chain and interest)
    rank_without: int     # the same model with every chain and interest removed


@dataclass(frozen=True)
class ReasoningChange:
    """The recommended top-n against the same model with all its reasoning removed.

    ``entered[n]``: in the top n only because of the reasoning; ``left[n]``:
    in the top n without it, pushed out by it. ``target_rank_without``: where
    the film the user watched next would rank without the reasoning.
    """

    entered: dict[int, list[RankChange]]
    left: dict[int, list[RankChange]]
    target_rank_without: int
    #: per n, whether the top n is in another order without the reasoning
    reordered: dict[int, bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def rows(changes: dict[int, list[RankChange]]) -> dict[str, Any]:
            return {str(n): [{**c.item.model_dump(), "rank_with": c.rank_with,
                              "rank_without": c.rank_without} for c in items]
                    for n, items in changes.items()}

        return {"entered": rows(self.entered), "left": rows(self.left),
                "target_rank_without": self.target_rank_without,
                "reordered": {str(n): value for n, value in self.reordered.items()}}


@dataclass(frozen=True)
class RunFacts:
    """A training run in plain facts: the day it was trained, its seed, its users."""

    trained: date | None = None
    seed: int | None = None
    users: int | None = None


@dataclass(frozen=True)
class ReportProvenance:
    """Where the numbers come from, in words (no folder, id or hash)."""

    dataset: str
    base_model: str
    base: RunFacts
    fusion_variant: str
    fusion: RunFacts
    graph_builder: str


@dataclass
class ReportInput:
    """Everything one report shows: explanation, prefix graph, reasoning change, counterfactual."""

    explanation: Explanation
    graph: nx.DiGraph
    reasoning: ReasoningChange
    provenance: ReportProvenance
    counterfactual: CounterfactualState = field(default_factory=CounterfactualState)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc)
                         .strftime("%Y-%m-%d %H:%M UTC"))


class ReportNotOfflineError(ValueError):
    """The generated report would load something from the network."""


# --------------------------------------------------------------------- building
def report_input(explainer: Explainer, point: ExplainPoint,
                 state: CounterfactualState | None = None) -> ReportInput:
    """Explain ``point`` and measure what its reasoning changed: everything a report shows.

    Args:
        explainer: the fused model's explainer (the app's, or the CLI's built the same way).
        point: the user and step (``Explainer.point``; the app passes its scored point).
        state: what the analyst switched off (graph ids); its ``result`` is recomputed here.

    Raises:
        KeyError: a switched-off id that is not in the point's graph.
    """
    from models.metrics import top_items

    explanation = explainer.explain(point)
    state = state or CounterfactualState()
    result = None
    if state.active:
        result = explainer.counterfactual(point, explainer.removal(
            point, chains=state.chains, nodes=state.nodes, items=state.items))
    everything = explainer.all_reasoning(point)
    with_, without = point.fused_scores, explainer.scores(point, [everything])[0]
    entered: dict[int, list[RankChange]] = {}
    left: dict[int, list[RankChange]] = {}
    reordered: dict[int, bool] = {}
    for n in CHANGE_SIZES:
        top_with, top_without = top_items(with_, n), top_items(without, n)
        reordered[n] = list(top_with) != list(top_without)
        entered[n] = [RankChange(explainer.item_ref(i), _rank(with_, i), _rank(without, i))
                      for i in top_with if i not in top_without]
        left[n] = [RankChange(explainer.item_ref(i), _rank(with_, i), _rank(without, i))
                   for i in top_without if i not in top_with]
    target = point.target
    # a re-watched target is masked from the ranking: rank it among all items then, as
    # the explanation's target ranks do
    if bool(point.masked[target]):
        without = explainer.scores(point, [everything], raw=True)[0]
    reasoning = ReasoningChange(entered, left, _rank(without, target), reordered)
    return ReportInput(explanation, point.prefix, reasoning,
                       provenance(explanation, point.prefix),
                       CounterfactualState(list(state.chains), list(state.nodes),
                                           list(state.items), result))


def _rank(scores: Any, item: int) -> int:
    """1-based rank of ``item`` in one score row (ties by index, as the explainer breaks them)."""
    from models.explain_faithfulness import rank_rows

    return int(rank_rows(scores[None], int(item))[0])


def run_facts(run_dir: str) -> RunFacts:
    """The day a run was trained (from its run id), its seed and its users, where recorded."""
    path = Path(run_dir) if run_dir else None
    trained = None
    match = _RUN_ID.fullmatch(path.name) if path else None
    if match:
        try:
            trained = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            trained = None
    seed = users = None
    for name, keys in (("config.json", ("train", "seed")),
                       ("fusion.json", ("fingerprint", "settings", "seed"))):
        raw = _read_json(path / name) if path else None
        value = _dig(raw, keys)
        if isinstance(value, int):
            seed = value
        if name == "fusion.json":
            found = _dig(raw, ("fingerprint", "settings", "users"))
            users = found if isinstance(found, int) else None
    return RunFacts(trained, seed, users)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _dig(raw: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def graph_builder(graph: nx.DiGraph) -> str:
    """What built the reasoning graph, in words (a model's name, never its path or hash)."""
    log = graph.graph.get("build_log")
    backend = dict(getattr(log, "backend", None) or {})
    kind = str(backend.get("backend") or "")
    if kind == "llama":
        name = Path(str(backend.get("model_path") or "")).name.removesuffix(".gguf")
        return f"the local LLM {name}" if name else "the local LLM"
    if kind == "http":
        name = str(backend.get("model") or "")
        return f"an LLM server running {name}" if name else "an LLM server"
    if kind.startswith("genre"):
        return "genre rules (no LLM)"
    return "an unrecorded builder"


def provenance(explanation: Explanation, graph: nx.DiGraph) -> ReportProvenance:
    p = explanation.provenance
    return ReportProvenance(explanation.dataset, p.base_model, run_facts(p.base_run),
                            p.fusion_variant, run_facts(p.fusion_run), graph_builder(graph))


# ---------------------------------------------------------------------- exports
def report_json(data: ReportInput) -> str:
    """The analyst's JSON: the ``Explanation`` as ``reasonrec explain --json`` writes it (run
    folders and ids kept), the reasoning change and the counterfactual state."""
    prov = asdict(data.provenance)
    for run in ("base", "fusion"):
        trained = prov[run]["trained"]
        prov[run]["trained"] = None if trained is None else trained.isoformat()
    return json.dumps({"schema": REPORT_SCHEMA, "version": REPORT_VERSION,
                       "created": data.created,
                       "explanation": data.explanation.model_dump(mode="json", by_alias=True),
                       "reasoning_change": data.reasoning.to_json(),
                       "provenance": prov,
                       "counterfactual": data.counterfactual.to_json()}, indent=2)


def read_report_json(text: str) -> tuple[Explanation, CounterfactualState]:
    """Parse and validate a JSON export (version 1 or 2)."""
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


def report_html(data: ReportInput) -> str:
    """The whole offline report as one HTML document (checked offline before it is returned)."""
    from reasonrec.report_svg import esc

    x = data.explanation
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Recommendations for user {esc(x.user)}</title><style>{_CSS}</style></head>
<body>
{first_page_html(data, FIRST_PAGE, CHANGE_SIZES)}
{details_html(data)}
</body></html>
"""
    check_report_offline(document)
    return document
