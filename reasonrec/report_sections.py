"""The report's HTML sections: the first page, then the details (see ``reasonrec.report``).

Everything is written in words a stakeholder reads: items by title, chains by
their intent ("chain 2: epic adventure"), interests by their text. Graph ids,
run folders and variable names stay in the JSON export. Every title, intent
and LLM text goes through :func:`~reasonrec.report_svg.esc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.explain_schema import (Effect, ExplanationPath, ItemExplanation, PathKind,
                                   RankedItem)
from reasoning.graph import EdgeKind, NodeKind
from reasoning.graph_nodes import session_items
from reasonrec.report_rows import score_change, shift_rows
from reasonrec.report_svg import chain_names, deletion_svg, esc, graph_svg, node_words, slope_svg

if TYPE_CHECKING:
    from reasonrec.report import ReportInput, ReportProvenance, RunFacts

MODEL_NAMES = {"pop": "popularity", "gru4rec": "GRU4Rec", "sasrec": "SASRec", "srgnn": "SR-GNN"}
VARIANT_WORDS = {"llmrg": "a reasoning-graph model",
                 "llmrg-no-div": "a reasoning-graph model without divergent interests",
                 "llmrg-no-verify": "a reasoning-graph model without verification"}
BRANCH_WORDS = {"ori": "reasoning chains", "div": "divergent interests"}
ROLE_WORDS = {"test": "held out from training as the test film",
              "valid": "held out from training as the validation film",
              "train": "a film the models trained on"}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _places(delta_rank: int) -> str:
    n = abs(delta_rank)
    return f"{n} place{'s' if n != 1 else ''}"


# ------------------------------------------------------------------ first page
def first_page_html(data: ReportInput, n: int, sizes: tuple[int, ...]) -> str:
    """User and point, the top ``n`` with their sentences, the true next film, the change."""
    x = data.explanation
    p = x.point
    top = x.items[:n]
    base_rank = {r.index: r.other_rank for r in x.top_k.fused}
    rows = "".join(
        f"<tr><td>{i.rank}</td><td><b>{esc(i.title)}</b></td><td>{esc(i.summary)}</td>"
        f"<td>{base_rank.get(i.index, '–')}</td></tr>" for i in top)
    target_line = (
        f"The film user {esc(x.user)} actually watched next, <b>{esc(p.target.title)}</b> "
        f"({esc(ROLE_WORDS.get(p.role, p.role))}), ranks <b>{ordinal(p.target_rank_base)}</b> by "
        f"the base model and <b>{ordinal(p.target_rank_fused)}</b> with reasoning "
        f"({ordinal(data.reasoning.target_rank_without)} with every reasoning chain and "
        f"interest removed).")
    return f"""<section class="first">
<h1>Recommendations for user {esc(x.user)}</h1>
<p class="muted">{esc(x.dataset)} · recommended after the user's first {p.history_length} films;
the reasoning read the last {p.steps} of them (the history window) ·
created {esc(data.created)}</p>
<h2>Top {len(top)} and why</h2>
<table><tr><th>#</th><th>film</th><th>why it is recommended</th><th>base model's rank</th></tr>
{rows}</table>
<p class="target">{target_line}</p>
<h2>What the reasoning changed</h2>
<div class="change">{_change_html(data, sizes)}</div>
</section>"""


def _change_html(data: ReportInput, sizes: tuple[int, ...]) -> str:
    r = data.reasoning
    lines = []
    for size in sizes:
        entered, left = r.entered.get(size, []), r.left.get(size, [])
        if not entered and not left:
            effect = ("the reasoning only reorders them" if r.reordered.get(size, True)
                      else "in the same order: the reasoning changes nothing here")
            lines.append(f"<p><b>Top {size}:</b> the same films with every reasoning chain "
                         f"and interest removed; {effect}.</p>")
            continue
        parts = []
        if entered:
            parts.append("entered because of the reasoning: " + ", ".join(
                f"<b>{esc(c.item.title)}</b> ({ordinal(c.rank_with)}; "
                f"{ordinal(c.rank_without)} without it)" for c in entered))
        if left:
            parts.append("pushed out by it: " + ", ".join(
                f"<b>{esc(c.item.title)}</b> ({ordinal(c.rank_without)} without it; "
                f"now {ordinal(c.rank_with)})" for c in left))
        lines.append(f"<p><b>Top {size}:</b> " + "; ".join(parts) + ".</p>")
    lines.append('<p class="muted">Measured by recomputing the same model\'s ranking with '
                 "every reasoning chain and divergent interest removed (the history alone).</p>")
    return "".join(lines)


# --------------------------------------------------------------------- details
def details_html(data: ReportInput) -> str:
    """Everything after the first page, under one "Details" heading."""
    x = data.explanation
    cf = data.counterfactual
    rows = shift_rows(x.top_k, cf.result if cf.active else None)
    history = " → ".join(f'<span class="chip">{esc(item.title)}</span>'
                         for item in session_items(data.graph))
    return f"""<section>
<h1>Details</h1>
<h2>Why each film is recommended</h2>
<p class="muted">Each path runs from films in the history, through a reasoning chain (and
sometimes a divergent interest), to the recommended film; its last step rests on facts from
the data. Each effect was measured by removing the path and ranking again.</p>
{"".join(_item_card(i, data) for i in x.items)}
<h2>The history window and its reasoning graph</h2>
<p>{history}</p>
{graph_svg(data.graph)}
<h2>Top {x.k}: base model and with reasoning</h2>
<div class="lists"><div><h3>Base model</h3>{_ranked_table(x.top_k.base, "rank with reasoning")}
</div><div><h3>With reasoning</h3>{_ranked_table(x.top_k.fused, "base model's rank")}</div></div>
<h2>Rank shift</h2>{slope_svg(rows, x.k, counterfactual=cf.active and cf.result is not None)}
<h2>Parts switched off</h2>{_counterfactual_html(data)}
<h2>How much each part of the reasoning adds</h2>
<p class="muted">The score each film loses, and how far it moves, when the model ignores one
part of the reasoning.</p>
{_branches(data)}
<h2>How faithful the explanations are</h2>{_faithfulness(data)}
<h2>Provenance</h2>{_provenance(data)}
</section>"""


def _shift_cell(shift: int) -> str:
    if shift > 0:
        return f'<span class="up">▲ {shift}</span>'
    if shift < 0:
        return f'<span class="down">▼ {-shift}</span>'
    return "="


def _ranked_table(rows: list[RankedItem], other: str) -> str:
    head = (f"<tr><th>#</th><th>film</th><th>score</th><th>{esc(other)}</th>"
            "<th>shift</th></tr>")
    body = "".join(f"<tr><td>{r.rank}</td><td>{esc(r.title)}</td><td>{r.score:.3f}</td>"
                   f"<td>{r.other_rank}</td><td>{_shift_cell(r.rank_shift)}</td></tr>"
                   for r in rows)
    return f"<table>{head}{body}</table>"


def _effect_words(effect: Effect, k: int) -> str:
    if effect.delta_rank > 0:
        move = f"moves it {_places(effect.delta_rank)} down, to {ordinal(effect.rank_after)}"
    elif effect.delta_rank < 0:
        move = f"moves it {_places(effect.delta_rank)} up, to {ordinal(effect.rank_after)}"
    else:
        move = "leaves its rank unchanged"
    out = "" if effect.in_top_k_after else f", out of the top {k}"
    return f"{move}{out} (score change {score_change(effect.delta_score)})"


def _path_html(path: ExplanationPath, names: dict[str, str], k: int) -> str:
    chain = names.get(path.chain or "", "a reasoning chain")
    interest = next((n.label for n in path.nodes if n.kind == NodeKind.INTENT), None)
    how = (f"Through {esc(chain)} and the divergent interest “{esc(interest)}”"
           if path.kind == PathKind.INTEREST and interest else f"Through {esc(chain)}")
    nodes = " → ".join(f'<span class="chip">{esc(n.label)}</span>' for n in path.nodes)
    facts = "".join(f"<li>{esc(f.text)}</li>" for f in path.evidence)
    facts = (f"<ul>{facts}</ul>" if facts
             else "<p class=\"muted\">No fact from the data links it to the film.</p>")
    reasons = [e for e in path.edges if e.kind == EdgeKind.CHAIN and e.reason]
    verified = next((e for e in path.edges if e.kind == EdgeKind.CHAIN and e.status), None)
    check = ""
    if verified is not None:
        state = {"verified": "passed verification", "rejected": "failed verification"}.get(
            str(verified.status), "was not verified")
        score = f" (score {verified.score:.2f})" if verified.score is not None else ""
        check = f"<p class=\"muted\">The chain {state}{score}.</p>"
    said = "".join(f"<li>{esc(_label(path, e.source))} → {esc(_label(path, e.target))}: "
                   f'<span class="reason">{esc(e.reason)}</span></li>' for e in reasons)
    said = f"<details><summary>What the LLM said</summary><ul>{said}</ul></details>" if said \
        else ""
    return (f'<div class="path"><b>{how}</b>: '
            f"removing it {_effect_words(path.effect, k)}.<div>{nodes}</div>{facts}{check}"
            f"{said}</div>")


def _label(path: ExplanationPath, node_id: str) -> str:
    return next((n.label for n in path.nodes if n.id == node_id), "")


def _item_card(item: ItemExplanation, data: ReportInput) -> str:
    k = data.explanation.k
    names = chain_names(data.graph)
    shown = [p for p in item.paths if p.shown]
    hidden = [p for p in item.paths if not p.shown]
    paths = "".join(_path_html(p, names, k) for p in shown) or (
        "<p>No reasoning path with a measured effect reaches this film.</p>")
    if hidden:
        paths += (f"<details><summary>{len(hidden)} more path{'s' if len(hidden) != 1 else ''}"
                  " without a measured effect, without evidence, or from a rejected chain"
                  f"</summary>{''.join(_path_html(p, names, k) for p in hidden)}</details>")
    without = (f"Removing all reasoning {_effect_words(item.without_reasoning, k)}."
               if item.without_reasoning is not None else "")
    return (f'<div class="card"><h3>{item.rank}. {esc(item.title)}</h3>'
            f"<p>{esc(item.summary)}</p><p class=\"muted\">{without}</p>{paths}"
            f"{_deletion_words(item, k)}</div>")


def _deletion_words(item: ItemExplanation, k: int) -> str:
    d, f = item.deletion, item.fidelity
    outcome = {
        "faster": "pushes it down faster than removing them in random order",
        "slower": "pushes it down more slowly than removing them in random order",
        "tied": "pushes it down exactly as fast as random order",
        "no_reaction": "does not move it in any order",
        "too_few_paths": None}.get(d.outcome or "")
    if outcome is None:
        return ""
    plus = "takes it out of" if f.plus else "keeps it in"
    return (f"<details><summary>Deletion curve</summary><p>Removing its paths in the order "
            f"above {outcome} (average of {d.random_orders} random orders). Removing the "
            f"explanation {plus} the top {k}.</p>{deletion_svg(d)}</details>")


def _counterfactual_html(data: ReportInput) -> str:
    state = data.counterfactual
    if not state.active or state.result is None:
        return "<p>Nothing switched off: the lists above are the original ones.</p>"
    names = chain_names(data.graph)
    graph = data.graph
    titles = {item.item_id: item.title for item in session_items(graph)}
    parts = [names.get(c, "a reasoning chain") for c in state.chains]
    parts += [node_words(graph, n) if n in graph else "a graph node" for n in state.nodes]
    parts += [f"the history film {titles.get(i, '')}" for i in state.items]
    cf = state.result
    entered = ", ".join(esc(i.title) for i in cf.entered) or "none"
    left = ", ".join(esc(i.title) for i in cf.left) or "none"
    return (f"<p>Switched off: {', '.join(esc(p) for p in parts)}.</p>"
            f"<p><b>Entered the top {data.explanation.k}:</b> {entered}<br>"
            f"<b>Left it:</b> {left}</p>" + _ranked_table(cf.top_k, "rank before"))


def _branches(data: ReportInput) -> str:
    x = data.explanation
    names = sorted({b for row in x.branch_effects for b in row.zeroed})
    head = "<tr><th>#</th><th>film</th>" + "".join(
        f"<th>without {esc(BRANCH_WORDS.get(n, n))}</th>" for n in names) + "</tr>"
    body = []
    for row in x.branch_effects:
        cells = "".join(f"<td>{_effect_words(row.zeroed[n], x.k)}</td>" if n in row.zeroed
                        else "<td>–</td>" for n in names)
        body.append(f"<tr><td>{row.rank}</td><td>{esc(row.title)}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _faithfulness(data: ReportInput) -> str:
    f = data.explanation.faithfulness
    if not f.items_reacting:
        compared = ("No film's rank moves when its paths are removed, so explanation order "
                    "cannot be compared with random order for this user.")
    else:
        share = "n/a" if f.share_faster is None else f"{f.share_faster:.0%}"
        compared = (f"Of the {f.items_reacting} films whose rank reacts to their paths, "
                    f"removing paths in explanation order pushes {share} of them down faster "
                    "than random order.")
    return (f"<p>{compared} {f.items_too_few_paths} films have fewer than two paths and "
            f"{f.items_no_reaction} do not react to any removal.</p>")


def _run_words(facts: RunFacts) -> str:
    parts = []
    if facts.trained is not None:
        parts.append(f"trained on {facts.trained.day} {facts.trained:%b %Y}")
    extra = [f"seed {facts.seed}"] if facts.seed is not None else []
    if facts.users is not None:
        extra.append(f"on {facts.users} users")
    return " ".join(parts) + (f" ({', '.join(extra)})" if extra else "")


def _provenance(data: ReportInput) -> str:
    prov: ReportProvenance = data.provenance
    base = MODEL_NAMES.get(prov.base_model, prov.base_model)
    variant = VARIANT_WORDS.get(prov.fusion_variant, "a reasoning-graph model")
    return (f"<p>Data: {esc(prov.dataset)}. Base model: {esc(base)}, "
            f"{esc(_run_words(prov.base))}. Refined with {esc(variant)}, "
            f"{esc(_run_words(prov.fusion))}. This user's reasoning graph was built by "
            f"{esc(prov.graph_builder)}. Report created {esc(data.created)}.</p>")
