"""``reasonrec bench reasoning``: what building reasoning graphs costs, against the bars of #3.

Three passes over the same sessions (the window before each user's test
target), all in one process with the model loaded and warmed up first:

1. **no reuse**: the knowledge base is off, so every question goes to the LLM
   (the "empty KB" baseline: each session is a cold build);
2. **reuse**: a fresh, empty KB in a temporary folder, filled as the batch
   goes, so later sessions reuse earlier sessions' answers;
3. **warm repeat**: the first sessions again with the KB pass 2 left, which
   must need no LLM call at all and give the same graphs.

Reported per pass: wall seconds per session (median, p95, mean), the LLM's
share of wall time, tokens per second, LLM calls per session, KB hits, and
the verification pass rate (verified chains over scored chains); plus the KB's
saving of LLM calls (pass 2 against pass 1) and each bar, met or not.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from models.data import Dataset
from reasoning.backend import open_backend
from reasoning.builder import EmptySessionError, GraphBuilder, session_window
from reasoning.config import ReasoningConfig
from reasoning.diverge import training_co_watch
from reasoning.graph import graph_to_json
from reasoning.graph_nodes import chain_records
from reasoning.kb import KnowledgeBase
from reasoning.localizer import open_localizer
from reasoning.verify import training_popularity

BARS = {"cold_session_seconds": 20.0, "outside_llm_share": 0.10, "warm_session_seconds": 0.2,
        "kb_call_saving": 0.40}
WARM_REPEATS = 20
Progress = Callable[[str, int, int], None]   # (pass name, done, total)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _summary(logs: list[Any], chains: list[list[Any]]) -> dict[str, Any]:
    walls = [log.wall_seconds for log in logs]
    llm = sum(log.llm_seconds for log in logs)
    wall = sum(walls)
    tokens_in = sum(log.tokens_in for log in logs)
    tokens_out = sum(log.tokens_out for log in logs)
    calls = sum(log.llm_calls for log in logs)
    statuses = [c.status for session in chains for c in session]
    scored = [s for s in statuses if s != "unverified"]
    return {
        "sessions": len(logs),
        "wall_seconds": {"median": round(statistics.median(walls), 4) if walls else 0.0,
                         "p95": round(_percentile(walls, 0.95), 4),
                         "mean": round(wall / len(walls), 4) if walls else 0.0,
                         "max": round(max(walls), 4) if walls else 0.0,
                         "total": round(wall, 3)},
        "llm_seconds": round(llm, 3),
        "llm_share": round(llm / wall, 4) if wall else None,
        "outside_llm_share": round(1 - llm / wall, 4) if wall else None,
        "tokens_in": tokens_in, "tokens_out": tokens_out,
        "tokens_out_per_llm_second": round(tokens_out / llm, 2) if llm else None,
        "tokens_per_llm_second": round((tokens_in + tokens_out) / llm, 2) if llm else None,
        "llm_calls": calls,
        "llm_calls_per_session": round(calls / len(logs), 3) if logs else 0.0,
        "retries": sum(log.retries for log in logs),
        "kb_hits": sum(log.kb_hits for log in logs),
        "kb_misses": sum(log.kb_misses for log in logs),
        "dropped_pieces": sum(len(log.dropped) for log in logs),
        "chains": len(statuses),
        "verified": statuses.count("verified"),
        "rejected": statuses.count("rejected"),
        "unverified": statuses.count("unverified"),
        "verification_pass_rate": round(statuses.count("verified") / len(scored), 4) if scored else None,
        "stages": {stage: {"seconds": round(sum(log.stages[stage].seconds for log in logs
                                                if stage in log.stages), 3),
                           "llm_calls": sum(log.stages[stage].llm_calls for log in logs
                                            if stage in log.stages),
                           "kb_hits": sum(log.stages[stage].kb_hits for log in logs
                                          if stage in log.stages)}
                   for stage in sorted({s for log in logs for s in log.stages})},
    }


def _run(builder: GraphBuilder, sessions: list[Any], name: str,
         progress: Progress | None) -> tuple[list[Any], list[Any]]:
    graphs, logs = [], []
    for done, session in enumerate(sessions, start=1):
        graph = builder.build(session)
        graphs.append(graph)
        logs.append(graph.graph["build_log"])
        if progress is not None:
            progress(name, done, len(sessions))
    return graphs, logs


def bench_reasoning(dataset: Dataset, config: ReasoningConfig, n_users: int,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Run the three passes over the first ``n_users`` users' sessions and report.

    The KB of pass 2 lives in a temporary folder: the user's own KB is neither
    read nor changed.
    """
    if n_users < 1:
        raise ValueError(f"--users must be at least 1, got {n_users}")
    sessions = []
    for user in dataset.user_ids:
        if len(sessions) == n_users:
            break
        try:
            sessions.append(session_window(dataset, user, config.l_tru))
        except EmptySessionError:
            continue
    load_before = os.getloadavg()
    started = time.perf_counter()
    backend = open_backend(config)
    load_seconds = time.perf_counter() - started
    localizer = open_localizer(dataset, config)
    popularity = training_popularity([dataset.history(u) for u in dataset.user_ids],
                                     len(dataset.catalogue))
    co_watch = training_co_watch(dataset)
    cold = GraphBuilder(backend, dataset.catalogue, config, None, localizer, popularity=popularity,
                        co_watch=co_watch)
    warm_up = cold.warm_up(encoder=True)

    graphs_a, logs_a = _run(cold, sessions, "no reuse", progress)
    with tempfile.TemporaryDirectory(prefix="reasonrec-bench-kb-") as folder:
        kb = KnowledgeBase(Path(folder) / "kb.sqlite")
        try:
            reuse = GraphBuilder(backend, dataset.catalogue, config, kb, localizer,
                                 popularity=popularity, co_watch=co_watch)
            graphs_b, logs_b = _run(reuse, sessions, "reuse", progress)
            kb_stats = kb.stats()   # before the warm repeat, whose lookups all hit
            repeat = sessions[:WARM_REPEATS]
            graphs_c, logs_c = _run(reuse, repeat, "warm repeat", progress)
        finally:
            kb.close()

    def chains_of(graphs: list[Any]) -> list[list[Any]]:
        return [chain_records(g) for g in graphs]

    a, b, c = _summary(logs_a, chains_of(graphs_a)), _summary(logs_b, chains_of(graphs_b)), \
        _summary(logs_c, chains_of(graphs_c))
    saving = 1 - b["llm_calls"] / a["llm_calls"] if a["llm_calls"] else None
    same_graphs = all(_content(x) == _content(y) for x, y in zip(graphs_b, graphs_c))
    same_as_cold = sum(_content(x) == _content(y) for x, y in zip(graphs_a, graphs_b))
    bars = {
        "cold_session_seconds": {"bar": f"median and p95 <= {BARS['cold_session_seconds']} s",
                                 "median": a["wall_seconds"]["median"], "p95": a["wall_seconds"]["p95"],
                                 "met": a["wall_seconds"]["p95"] <= BARS["cold_session_seconds"]},
        "outside_llm_share": {"bar": f"<= {BARS['outside_llm_share']:.0%} of wall time (no-reuse pass)",
                              "value": a["outside_llm_share"],
                              "met": (a["outside_llm_share"] or 0) <= BARS["outside_llm_share"]},
        "warm_session_seconds": {"bar": f"p95 <= {BARS['warm_session_seconds']} s, no LLM call",
                                 "p95": c["wall_seconds"]["p95"], "llm_calls": c["llm_calls"],
                                 "met": c["wall_seconds"]["p95"] <= BARS["warm_session_seconds"]
                                 and c["llm_calls"] == 0},
        "kb_call_saving": {"bar": f">= {BARS['kb_call_saving']:.0%} fewer LLM calls at an equal "
                                  "verification pass rate",
                           "value": round(saving, 4) if saving is not None else None,
                           "pass_rate_no_reuse": a["verification_pass_rate"],
                           "pass_rate_reuse": b["verification_pass_rate"],
                           "met": saving is not None and saving >= BARS["kb_call_saving"]
                           and a["verification_pass_rate"] == b["verification_pass_rate"]},
    }
    info = backend.info()
    return {
        "benchmark": "reasoning", "dataset": dataset.name, "users": len(sessions),
        "users_requested": n_users, "window": config.l_tru,
        "settings": cold.settings,
        "environment": {"cpu_count": os.cpu_count(), "threads": info.n_threads or config.threads,
                        "load_average_before": [round(x, 2) for x in load_before],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()],
                        "python": platform.python_version(), "machine": platform.machine()},
        "backend": info.to_dict(),
        "startup_seconds": {"model_load": round(load_seconds, 3),
                            **{k: round(v, 3) for k, v in warm_up.items()}},
        "no_reuse": a, "reuse": b, "warm_repeat": c,
        "kb_call_saving": round(saving, 4) if saving is not None else None,
        "kb_after_reuse_pass": {k: kb_stats[k] for k in ("entries", "hits", "misses", "hit_rate", "kinds")},
        "graphs_identical_no_reuse_vs_reuse": f"{same_as_cold}/{len(sessions)}",
        "warm_repeat_identical": same_graphs,
        "bars": bars,
    }


def _content(graph: Any) -> dict[str, Any]:
    """A graph's JSON without its build log (which holds timings)."""
    document = graph_to_json(graph)
    document.pop("build_log")
    return document
