"""Evaluation and error analysis: the bench tables, and where the reasoning graph helped or hurt.

The tables are the JSON files the benches write (``reasonrec bench models``,
``bench reference``, ``bench fusion``, ``bench reasoning``) in the data
directory, else the ones shipped in ``assets/bench/<dataset>/`` (labelled as
shipped); this page reads them and never runs a bench. The per-user list
compares the base and the fused model on the fused model's user sample
(``models.fusion.error_analysis``); one click opens a user in the other pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components.plain_names import bench_row_words, model_words
from app import keys
from app.components.fusion_results import show_fusion_results
from app.state import get_fusion, get_strategies, set_current_user, studio_or_stop
from reasonrec.bench_reference import (ours_ndcg10, reference_bench_name, reference_ndcg10,
                                    reference_seeds)
from reasonrec.top_k_outcomes import ORDER, label, top_k_outcome

METRICS_AT_10 = ("HR@10", "NDCG@10", "MRR@10")
GPU_REFERENCE = reference_bench_name("cuda")
BENCH_COMMANDS = {GPU_REFERENCE: "reference --device cuda"}  # bench file -> command

st.header("Evaluation and error analysis")
studio = studio_or_stop()
bench_dir = Path(studio.config.bench_dir)


def read_bench(name: str) -> dict[str, Any] | None:
    """This machine's bench JSON, else the one shipped for the dataset, else ``None`` (with a
    warning when a file is there but unreadable)."""
    local = bench_dir / f"{name}.json"
    shipped = studio.shipped_bench(name)
    for path in (local, shipped):
        if not path.is_file():
            continue
        try:
            bench = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            st.warning(f"Could not read {path}: {exc}. Rerun `reasonrec bench {name} --json`.")
            continue
        if path == shipped:
            command = BENCH_COMMANDS.get(name, name)
            st.caption(f"Shipped results, measured by the developers on {machine_words(bench)}. "
                       f"Run `reasonrec bench {command} --json` to measure on this machine; its "
                       "results then replace these here.")
        return bench
    return None


def machine_words(bench: dict[str, Any]) -> str:
    """Where a bench ran, in words (the JSON's ``machine``)."""
    machine = bench.get("machine") or {}
    if machine.get("device", "cpu") != "cpu":
        return f"one GPU ({machine.get('gpu') or machine['device']})"
    cores = machine.get("cpu_count")
    return f"a {cores}-core CPU machine" if cores else "a CPU machine"


def reference_table(reference: dict[str, Any]) -> None:
    """Our model against the reference implementation, per model (one bench file)."""
    # a static table: a third interactive grid on this page costs ~0.5 s per visit
    st.table(pd.DataFrame([{
        "model": model_words(r["model"]),
        "ours NDCG@10": round(ours_ndcg10(r), 4),
        "ours over": r.get("bar_judged_on", "latest run"),
        "reference NDCG@10": round(reference_ndcg10(r), 4),
        "reference seeds": ", ".join(map(str, reference_seeds(r))),
        "ours − reference": round(r["ours_minus_reference_ndcg10"], 4),
        "reference epochs": r["reference"]["epochs"],
        "reference converged": r.get("reference_converged", False)}
        for r in reference["models"]]).set_index("model"))


PASS_WORDS = {"no_reuse": "LLM answers everything", "reuse": "knowledge base reused",
              "warm_repeat": "same sessions again"}
DETAILS: list[tuple[str, str]] = []   # (section, technical text) for the one Details expander


def fusion_finding(bench: dict[str, Any]) -> str:
    """The fusion bench's result as a finding (no developer target)."""
    rows = {r["name"]: r for r in bench.get("rows", [])}
    sample = bench.get("sample", {})
    full = rows.get("llmrg")
    diff = ((full or {}).get("vs_base") or {}).get("NDCG@10")
    if full is None or diff is None:
        return "The table compares the base model with the fused variants."
    d = diff["diff"]
    helps = ("it helps, measurably" if d["low"] > 0 else
             "the interval includes no change" if d["high"] >= 0 else "it hurts, measurably")
    return (f"On {sample.get('users', '?')} sampled users, adding the LLM's reasoning graph "
            f"(LLMRG) changes test NDCG@10 by {d['mean']:+.4f} against the base model "
            f"({model_words(sample.get('base_model'))}), 95% interval [{d['low']:+.4f}, "
            f"{d['high']:+.4f}]: {helps}.")


models_tab, fusion_tab, reasoning_tab, users_tab = st.tabs(
    ["Base models", "Fusion", "Reasoning cost", "Users: top-10 outcomes"])

with models_tab:
    bench = read_bench("models")
    if bench is None:
        st.info("No base-model results on this machine yet: run `reasonrec bench models --json`.")
    else:
        if len(bench.get("seeds", [])) > 1:
            # test NDCG@10 can move by 0.01 between seeds: the mean over seeds is what compares
            rows = [{"model": model_words(s["model"]), "seeds": len(s["seeds"]),
                     "s/epoch": round(s["seconds_per_epoch"], 2),
                     "total s": round(s["total_seconds"], 1),
                     "peak RSS MB": round(s["peak_rss_mb"]),
                     **{m: round(s["test_mean"][m], 4) for m in METRICS_AT_10},
                     "NDCG@10 std": round(s["test_std"]["NDCG@10"], 4)} for s in bench["summary"]]
            st.caption(f"Means over seeds {', '.join(map(str, bench['seeds']))}; "
                       "std is the spread from seed to seed.")
        else:
            rows = [{"model": model_words(r["model"]), "seed": r.get("seed"),
                     "s/epoch": round(r["seconds_per_epoch"], 2),
                     "epochs": r["epochs"], "total s": round(r["total_seconds"], 1),
                     "peak RSS MB": round(r["peak_rss_mb"]),
                     **{m: round(r["test"][m], 4) for m in METRICS_AT_10}}
                    for r in bench["models"]]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="eval_models_table")
        figure = go.Figure([go.Bar(x=[r["model"] for r in rows], y=[r["NDCG@10"] for r in rows])])
        figure.update_layout(title="Test NDCG@10 (loo, full ranking)", height=300,
                             margin={"t": 40, "b": 30})
        st.plotly_chart(figure, key="eval_models_chart")
    st.markdown("**Against a reference implementation** (RecBole 1.2.1's models and trainer, "
                "transcribed; same split and metrics)")
    reference = read_bench("reference")
    if reference is None:
        st.info("No reference bench: run `reasonrec bench reference --json` (hours on CPU).")
    else:
        reference_table(reference)
        st.caption("A reference that did not converge (stopped by a time cap) only shows a lower "
                   "bound of what it reaches.")
    # `bench reference --device cuda`: both sides on one GPU, where RecBole itself trains
    reference_gpu = read_bench(GPU_REFERENCE)
    if reference_gpu is not None:
        st.markdown(f"**The same comparison on {machine_words(reference_gpu)}**, both sides "
                    "trained there with the same seeds")
        reference_table(reference_gpu)

with fusion_tab:
    bench = read_bench("fusion")
    try:
        strategy_runs = get_strategies().runs
    except Exception as exc:   # no fused model here: the bench's rows still show
        strategy_runs = []
        DETAILS.append(("Fusion", f"trained strategies could not be listed: {exc}"))
    if bench is None:
        st.info("No fusion bench results on this machine yet: run `reasonrec bench fusion "
                "--json`. The rows below come from the strategies' training runs.")
        show_fusion_results(None, strategy_runs, DETAILS)
    else:
        sample = bench.get("sample", {})
        st.write(fusion_finding(bench))
        st.caption(f"{sample.get('users', '?')} sampled users (seed {sample.get('seed', '?')}); "
                   f"base model: {model_words(sample.get('base_model'))}.")
        DETAILS.append(("Fusion", f"graphs from {sample.get('graph_source', '?')}; base run "
                                  f"{sample.get('base_run', '?')}."))
        show_fusion_results(bench, strategy_runs, DETAILS)
        latency = bench.get("latency") or {}
        faithfulness = bench.get("faithfulness") or {}
        findings = []
        if latency.get("p95_ms") is not None:
            findings.append(f"A counterfactual switch recomputes the fused list in "
                            f"{latency['p95_ms']:.0f} ms or less for 95% of switches "
                            f"({latency.get('users', '?')} users).")
        if faithfulness.get("share_users_faster") is not None:
            findings.append(f"Removing explanation paths in their stated order lowers the "
                            f"items faster than a random order for "
                            f"{faithfulness['share_users_faster']:.0%} of the "
                            f"{faithfulness.get('users_compared', '?')} users whose ranks "
                            "move at all.")
        if faithfulness.get("smooth_share_users_faster") is not None:
            findings.append(f"A finer measure, how close the other films come to each item, "
                            f"moves for every user: on it the stated order is faster for "
                            f"{faithfulness['smooth_share_users_faster']:.0%} of "
                            f"{faithfulness['smooth_users_compared']} users.")
        if findings:
            st.markdown(" ".join(findings))

with reasoning_tab:
    bench = read_bench("reasoning")
    if bench is None:
        st.info("No reasoning-cost results on this machine yet: run "
                "`reasonrec bench reasoning --json`.")
    else:
        st.caption(f"{bench['users']} sessions, window {bench['window']}, "
                   f"{bench['environment']['threads']} LLM thread(s).")
        saving = (bench.get("kb_call_saving") or {})
        median = {name: bench[name]["wall_seconds"]["median"]
                  for name in ("no_reuse", "reuse", "warm_repeat") if name in bench}
        if "no_reuse" in median and "reuse" in median:
            st.write(f"A session's reasoning graph takes {median['no_reuse']:.1f} s (median) "
                     f"when the LLM answers everything and {median['reuse']:.1f} s when the "
                     "knowledge base answers what it has seen before"
                     + (f" ({saving['value']:.0%} fewer LLM calls)"
                        if isinstance(saving, dict) and saving.get("value") is not None
                        else "") + ".")
        passes = {name: bench[name] for name in ("no_reuse", "reuse", "warm_repeat")}
        st.dataframe(pd.DataFrame([{
            "pass": PASS_WORDS.get(name, name), "median s": p["wall_seconds"]["median"],
            "p95 s": p["wall_seconds"]["p95"],
            "LLM calls/session": p["llm_calls_per_session"], "KB hits": p["kb_hits"],
            "pass rate": p["verification_pass_rate"]} for name, p in passes.items()]),
            hide_index=True, key="eval_reasoning_passes")

with users_tab:
    try:
        handle = get_fusion()
        # Scoring the sample takes a while; filters rerun the page, so keep the rows
        # for this fused run in the session.
        cached = st.session_state.get(keys.EVAL_OUTCOMES)
        if cached is None or cached[0] != str(handle.run.directory):
            with handle.lock:
                from reasonrec.fusion import user_outcomes
                cached = (str(handle.run.directory), user_outcomes(handle.workspace, handle.run))
            st.session_state[keys.EVAL_OUTCOMES] = cached
        rows = cached[1]
    except Exception as exc:   # no graphs for the sample, a broken run: say what to do
        st.error(f"Could not load the fused model: {exc}. Build the sample's graphs with "
                 "`reasonrec build-graphs --users fusion` (or set `[fusion] graphs = \"genre\"`), "
                 "then `reasonrec fusion fit`.")
        st.stop()
    frame = pd.DataFrame(rows)
    k = 10
    frame["top-10 outcome"] = [label(top_k_outcome(b, f, k), k)
                               for b, f in zip(frame["base_rank"], frame["fused_rank"])]
    counts = frame["top-10 outcome"].value_counts()
    order = [label(o, k) for o in ORDER]
    entered, left_, moved = (int(counts.get(o, 0)) for o in order[:3])
    st.write(f"On {len(frame)} sampled users, with the reasoning graph the film each user really "
             f"watched next **entered the top {k}** for **{entered}** and **left it** for "
             f"**{left_}**; it moved inside the top {k} for {moved}, and stayed where it was, "
             f"or outside the top {k} both times, for {len(frame) - entered - left_ - moved}.")
    genres = sorted({g for gs in frame["target_genres"] for g in gs})
    c1, c2, c3, c4 = st.columns(4)
    outcome = c1.selectbox("Outcome", ["all", *order], key=keys.EVAL_OUTCOME)
    genre = c2.selectbox("Genre of the next film", ["all", *genres], key=keys.EVAL_GENRE)
    lengths = c3.slider("History length", int(frame["history_length"].min()),
                        int(frame["history_length"].max()),
                        (int(frame["history_length"].min()), int(frame["history_length"].max())),
                        key=keys.EVAL_LENGTH)
    pass_rate = c4.slider("Share of chains passing the check", 0.0, 1.0, (0.0, 1.0), step=0.05,
                          key=keys.EVAL_PASS_RATE)
    shown = frame[frame["history_length"].between(*lengths)]
    if outcome != "all":
        shown = shown[shown["top-10 outcome"] == outcome]
    if genre != "all":
        shown = shown[shown["target_genres"].apply(lambda gs: genre in gs)]
    if pass_rate != (0.0, 1.0):   # users without a scored chain only pass the full range
        shown = shown[shown["verification_pass_rate"].between(*pass_rate)]
    # entered and left first, then moves a user sees; inside a group the best rank first
    shown = shown.assign(_group=shown["top-10 outcome"].map(order.index),
                         _best=shown[["base_rank", "fused_rank"]].min(axis=1))
    shown = shown.sort_values(["_group", "_best"], kind="stable")
    view = shown.assign(target_genres=shown["target_genres"].apply(", ".join)).rename(columns={
        "base_rank": "base rank", "fused_rank": "rank with reasoning",
        "target": "next film", "target_genres": "genres", "history_length": "films watched",
        "verification_pass_rate": "chains passing the check"})
    selection = st.dataframe(
        view[["user", "top-10 outcome", "base rank", "rank with reasoning", "next film",
              "genres", "films watched", "chains", "chains passing the check"]],
        hide_index=True, on_select="rerun", selection_mode="single-row", key=keys.EVAL_USERS)
    picked = selection.selection.rows if selection else []
    if picked:
        user = str(view.iloc[picked[0]]["user"])
        set_current_user(user)
        st.write(f"User **{user}** is now the current user in every page:")
        links = st.columns(3)
        links[0].page_link("views/session_explorer.py", label="Open in Session explorer")
        links[1].page_link("views/reasoning.py", label="Open in Reasoning")
        links[2].page_link("views/recommendations.py", label="Open in Recommendations")
    else:
        st.caption("Select a row to open that user in the session explorer, reasoning and "
                   "recommendation pages.")

with st.expander("Details"):
    st.caption(f"Results are read from {bench_dir} when measured on this machine, else from the "
               "files shipped with the app.")
    for section, text in DETAILS:
        st.caption(f"{section}: {text}")
