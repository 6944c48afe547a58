"""The Evaluation page's fusion table and chart: every strategy the bench measured, and every
strategy with a trained run that the bench has not measured yet.

Bench rows (``reasonrec bench fusion``) carry bootstrap intervals and the paired
difference with the base model; a run's own row carries the test metrics its training
saved on the same sampled users (no interval: one number, said so in the table). Rows
are named in words (``app.components.plain_names``); the variant names go to Details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.effect_state import md
from app.components.plain_names import bench_row_words, strategy_words, unavailable_words
from app.keys import EVAL_FUSION_METRIC

FROM_BENCH = "bench, 95% bootstrap interval"
FROM_RUN = "its training run (no interval yet)"


@dataclass(frozen=True)
class ResultRow:
    """One strategy's test metric: its name in words, the value and where it comes from."""

    name: str
    words: str
    mean: float
    low: float | None
    high: float | None
    versus_base: str
    source: str


def result_rows(bench: dict[str, Any] | None, runs: Sequence[Any], metric: str) -> list[ResultRow]:
    """The bench's rows, then each trained strategy run the bench has no row for."""
    rows: list[ResultRow] = []
    base_model = ((bench or {}).get("sample") or {}).get("base_model")
    for row in (bench or {}).get("rows", []):
        value = row["metrics"][metric]
        diff = ((row.get("vs_base") or {}).get(metric) or {}).get("diff")
        rows.append(ResultRow(
            row["name"], bench_row_words(row["name"], row.get("description"), base_model),
            value["mean"], value["low"], value["high"],
            "" if diff is None else
            f"{diff['mean']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]", FROM_BENCH))
    measured = {r.name for r in rows}
    for run in runs:
        test = ((run.run.metrics or {}).get("test") or {}) if run.available else {}
        if run.name in measured or metric not in test:
            continue
        rows.append(ResultRow(run.name, strategy_words(run.name, run.description),
                              float(test[metric]), None, None, "", FROM_RUN))
    return rows


def result_figure(rows: Sequence[ResultRow], metric: str) -> go.Figure:
    """Horizontal bars (long plain names stay readable), intervals where the bench has them."""
    shown = list(reversed(rows))   # plotly draws the first bar at the bottom
    figure = go.Figure([go.Bar(
        y=[r.words for r in shown], x=[r.mean for r in shown], orientation="h",
        marker_color=["#1f77b4" if r.source == FROM_BENCH else "#9ecae1" for r in shown],
        error_x={"type": "data", "symmetric": False,
                 "array": [0 if r.high is None else r.high - r.mean for r in shown],
                 "arrayminus": [0 if r.low is None else r.mean - r.low for r in shown]})])
    note = (" (light bars: from a training run, no interval)"
            if any(r.source == FROM_RUN for r in rows) else " with 95% bootstrap intervals")
    figure.update_layout(title=f"Test {metric}{note}",
                         height=90 + 34 * len(rows), margin={"t": 40, "b": 30, "l": 10},
                         yaxis={"automargin": True})
    return figure


def show_fusion_results(bench: dict[str, Any] | None, runs: Sequence[Any],
                        details: list[tuple[str, str]]) -> None:
    """The metric picker, the table and the chart (``details``: lines for the Details
    expander)."""
    metric = st.selectbox("Metric", [f"{m}@{k}" for k in (5, 10, 20)
                                     for m in ("HR", "NDCG", "MRR")], index=4,
                          key=EVAL_FUSION_METRIC)
    rows = result_rows(bench, runs, metric)
    if not rows:
        st.info("No strategy has results yet: run `reasonrec bench fusion --json`.")
        return
    st.dataframe(pd.DataFrame([{
        "strategy": r.words, metric: round(r.mean, 4),
        "95% interval": "" if r.low is None else f"[{r.low:.4f}, {r.high:.4f}]",
        "difference with the base model": r.versus_base, "measured by": r.source}
        for r in rows]), hide_index=True, key="eval_fusion_table")
    st.plotly_chart(result_figure(rows, metric), key="eval_fusion_chart")
    shown = {r.name for r in rows}
    missing = unavailable_words([r for r in runs if r.name not in shown],
                                lead="Not shown (no bench row and no trained model here)")
    if missing:
        st.caption(md(missing))
    details.append(("Fusion strategies", "; ".join(
        f"{r.words} = {r.name}" for r in rows) + "."))
