"""The Recommendations page's explanations in words: sentences, paths, evidence, effects.

A view over the explainer's pydantic output (``models.explain_schema``); nothing is
computed here. The default view names films, interests and chains in plain words;
graph ids, variable names and faithfulness numbers go to the page's one "Details"
expander (:func:`path_id_rows`, the branch table). Titles, interests and LLM text are
untrusted: markdown gets them through :func:`md` only, tables as cell text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from app import keys
from app.components.effect_state import md
from reasonrec.explain_api import (Effect, EvidenceFact, EvidenceKind, ExplanationPath,
                                   ItemExplanation, PathFlag, PathKind, PointInfo)
from reasonrec.reasoning_api import NodeKind
from reasonrec.report_rows import score_change

SHOW_HIDDEN_LABEL = "Show paths with no measured effect"
FLAG_WORDS = {PathFlag.NO_EVIDENCE: "no fact from the data links it to this film",
              PathFlag.NO_EFFECT: "removing it changes neither the score nor the rank",
              PathFlag.REJECTED_CHAIN: "its chain did not pass the LLM's check",
              PathFlag.WORKS_AGAINST: "removing it would raise this film, so it is no reason for it"}
FACT_KINDS = {EvidenceKind.CO_WATCH: "watched together", EvidenceKind.SHARED_GENRES: "genres",
              EvidenceKind.INTEREST_SIMILARITY: "close to the interest",
              EvidenceKind.LOCALIZED: "matched by the reasoning"}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def chain_name(chain: str | None, chains: Sequence[str] = ()) -> str:
    """A chain in words: "chain 3" (its number, never the graph id's prefix)."""
    if chain is None:
        return "a chain"
    if chain in chains:
        return f"chain {list(chains).index(chain) + 1}"
    number = re.fullmatch(r"c(\d+)", chain)
    return f"chain {number.group(1)}" if number else "a chain"


def effect_words(effect: Effect, k: int) -> str:
    """What removing a path did to the item, in words."""
    if effect.delta_rank > 0:
        where = (f"falls to {ordinal(effect.rank_after)}"
                 + ("" if effect.in_top_k_after else f", out of the top {k}"))
    elif effect.delta_rank < 0:
        where = f"rises to {ordinal(effect.rank_after)}"
    else:
        where = f"stays {ordinal(effect.rank_after)}"
    return f"without it the film {where} (score {score_change(effect.delta_score)})"


def path_words(path: ExplanationPath, chains: Sequence[str]) -> str:
    """"Chain 3: Die Hard 2 → “action” → The Shadow" (markdown, escaped)."""
    steps = [f"“{md(n.label)}”" if n.kind == NodeKind.INTENT else md(n.label) for n in path.nodes]
    kind = "interest" if path.kind == PathKind.INTEREST else "chain"
    return f"**{chain_name(path.chain, chains).capitalize()}** ({kind}): " + " → ".join(steps)


def fact_counts(facts: Sequence[EvidenceFact]) -> pd.DataFrame:
    """The numbers behind a path's facts, one row per fact (untrusted text as cells)."""
    rows = []
    for fact in facts:
        rows.append({
            "fact": FACT_KINDS.get(fact.kind, str(fact.kind)),
            "from": fact.source.title if fact.source else (fact.interest or ""),
            "to": fact.target.title,
            "viewers of the first film": fact.viewers_source,
            "of them, later watched this one": fact.viewers_both,
            "viewers of this film": fact.viewers_target,
            "all viewers": fact.users,
            "lift": None if fact.lift is None else round(fact.lift, 2),
            "shared genres": ", ".join(fact.genres),
            "similarity": None if fact.similarity is None else round(fact.similarity, 2),
            "closer than (share of films)": (None if fact.closer_than is None
                                             else f"{fact.closer_than:.0%}")})
    frame = pd.DataFrame(rows)
    return frame.dropna(axis="columns", how="all").loc[:, lambda f: (f != "").any()]


def show_path(path: ExplanationPath, number: int, chains: Sequence[str], k: int,
              key: str) -> None:
    """One path: its films and interests, its facts, and its measured effect."""
    st.markdown(f"{number}\\. {path_words(path, chains)}  \n"
                f"*{md(effect_words(path.effect, k)).capitalize()}*")
    if path.flags:
        st.caption("Hidden by default: " + "; ".join(FLAG_WORDS.get(f, str(f))
                                                     for f in path.flags) + ".")
    if path.evidence:
        st.markdown("\n".join(f"- {md(fact.text)}" for fact in path.evidence))
        numeric = [fact for fact in path.evidence if fact.numeric]
        if numeric:
            with st.expander("Counts behind these facts"):
                st.dataframe(fact_counts(numeric), hide_index=True, key=f"{key}_counts")


def leads_to(path: ExplanationPath) -> bool:
    """Listed by default: the explainer shows it (it reaches the item, has a measured
    effect, and removing it lowers the item rather than lifting it)."""
    return path.shown


def show_paths(ie: ItemExplanation, chains: Sequence[str], k: int) -> None:
    """The paths that reach the item with their facts; the rest behind a toggle."""
    shown = [p for p in ie.paths if leads_to(p)]
    hidden = [p for p in ie.paths if not leads_to(p)]
    if shown:
        st.markdown(f"**What leads to it** ({len(shown)} reasoning "
                    f"path{'s' if len(shown) != 1 else ''}, strongest measured effect first)")
        for number, path in enumerate(shown, start=1):
            show_path(path, number, chains, k, keys.effect_path(ie.index, number))
    elif not ie.reached:
        st.info(f"No reasoning path reaches {md(ie.title)}: it comes from the base model"
                + (f" (removing all reasoning moves it "
                   f"{abs(ie.without_reasoning.delta_rank)} "
                   f"place{'s' if abs(ie.without_reasoning.delta_rank) != 1 else ''} "
                   f"{'down' if ie.without_reasoning.delta_rank > 0 else 'up'})."
                   if ie.without_reasoning and ie.without_reasoning.delta_rank else "."))
    else:
        st.caption("Reasoning paths reach this film, but removing any of them does not "
                   "lower it.")
    if hidden and st.toggle(SHOW_HIDDEN_LABEL, key=keys.EFFECT_SHOW_HIDDEN,
                            help=f"{len(hidden)} more path(s): paths that do not reach the film, "
                                 "change nothing when removed, would raise it when removed, "
                                 "or whose chain did not pass the check."):
        for number, path in enumerate(hidden, start=len(shown) + 1):
            show_path(path, number, chains, k, keys.effect_path(ie.index, number))


def show_summaries(items: Sequence[ItemExplanation]) -> None:
    """Every fused top-k film with its one sentence (the page's answer to "why?")."""
    with st.container(key="effect-summaries"):
        st.subheader("Why these films")
        lines = [f"**{item.rank}. {md(item.title)}**: {md(item.summary)}" for item in items]
        st.markdown("\n\n".join(lines))


def show_true_item(info: PointInfo, k: int) -> None:
    """The held-out next film and where each model ranks it."""
    base, fused = info.target_rank_base, info.target_rank_fused
    moved = base - fused
    change = (f"{abs(moved)} place{'s' if abs(moved) != 1 else ''} "
              f"{'higher' if moved > 0 else 'lower'}")
    with st.container(key="effect-true-item", border=True):
        st.markdown(f"**The film this user really watched next:** {md(info.target.title)} "
                    "(held out: the models never saw it).")
        a, b, c = st.columns(3)
        a.metric("Base model ranks it", ordinal(base))
        b.metric("With reasoning", ordinal(fused), delta=None if moved == 0 else
                 f"{moved:+d} places", delta_color="normal")
        c.metric(f"In the top {k}?", "with reasoning" if fused <= k else
                 ("base only" if base <= k else "no"))
        st.caption("With reasoning it ranks in the same place as in the base model."
                   if moved == 0 else f"With reasoning it ranks {change} than in the base model.")


def path_id_rows(ie: ItemExplanation) -> list[dict[str, Any]]:
    """Technical path rows for the Details expander: graph ids, flags, raw effects."""
    return [{"path": p.id, "kind": str(p.kind), "ends at": str(p.ends_at),
             "shown": p.shown, "flags": ", ".join(str(f) for f in p.flags),
             "delta score": round(p.effect.delta_score, 4), "delta rank": p.effect.delta_rank,
             "rank after": p.effect.rank_after,
             "removes": ", ".join([*(p.removal.chains if p.removal else []),
                                   *(p.removal.nodes if p.removal else [])])}
            for p in ie.paths]
