"""``reasonrec bench fusion``: base vs fused on the same sampled users, latency, faithfulness.

Rows: the best base model; base + the sequence-graph control; base + the full
LLMRG graph; LLMRG without divergent extension; LLMRG without verification.
Columns: HR/NDCG/MRR at 5, 10 and 20 on the sample's test targets, each with
a 95% bootstrap interval, and each fused row's paired difference to the base
(same users, same resamples). Then:

* a plain sentence saying whether the reasoning graph helps (LLMRG against
  the control, so the gain of a graph encoder alone is not credited to the LLM),
  naming the graph source;
* counterfactual rescoring latency (p50/p95 over ``latency_users`` users): one
  random removal each (a chain, a reasoning node or a session item), timed
  from the removal to the new fused top-k, the way the app rescores a click
  (the user's point is loaded beforehand, as the app has it on screen);
* faithfulness over ``faithfulness_users`` users' fused top-k explanations:
  the share of users whose explanation order drops ranks faster than random
  orders (among users with an item whose rank reacts to its paths; users
  without one are counted apart), and mean fidelity+ / fidelity-.

Every row also carries its LLM cost per user and training seconds, its share
of popular items in the test top-10 (:mod:`models.bench_fusion_extras`), and
its paired differences to the control and to LLMRG when those rows ran.

Torch runs on one thread: on the shared 2-core machines a second thread only
adds spin-waiting.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from models.explain import Explainer, explanation_order_faster, user_outcome
from models.explain_schema import Explanation
from models.explain_faithfulness import smooth_area_difference, smooth_outcome
from models.bench_fusion_extras import (POPULAR_SHARE, llm_cost, popular_items,
                                        popularity_share)
from models.fusion.graph_signal import CandidateSignal, candidate_signal, signal_sentence
from models.fusion.samples import BASE_ROW, ROLES, VARIANTS
from models.fusion.settings import MIN_BENCH_USERS
from models.fusion.workspace import FusionWorkspace
from models.graph_data import reasoning_elements
from models.metrics import per_user_metrics
from models.stats import Interval, PairedDifference, bootstrap_mean, paired_bootstrap, paired_table
from reasoning.graph import NodeKind
from reasoning.graph_nodes import node_ids

#: The issue's aims, reported next to the measurements.
AIM_NDCG_GAIN = 0.10
AIM_P95_MS = 50.0
AIM_FASTER_SHARE = 0.80


def _interval(value: Interval) -> dict[str, float]:
    return {"mean": value.mean, "low": value.low, "high": value.high}


def _difference(value: PairedDifference) -> dict[str, Any]:
    return {"diff": _interval(value.diff), "relative": value.relative,
            "significant": value.significant}


def verdict(workspace: FusionWorkspace, llmrg: PairedDifference | None,
            control: PairedDifference | None, over_control: PairedDifference | None) -> str:
    """The plain sentence: does the reasoning graph help, by how much, how sure."""
    info = workspace.describe()
    source = info["graph_source"]
    if llmrg is None:
        return "The full LLMRG row was not run, so nothing can be said about the reasoning graph."
    parts = [f"On {llmrg.n} sampled users with graphs from {source}, base + full LLMRG changes "
             f"test NDCG@10 by {llmrg.relative or 0.0:+.1%} over the best base "
             f"({info['base_model']}), 95% CI of the difference [{llmrg.diff.low:+.4f}, "
             f"{llmrg.diff.high:+.4f}]"]
    if control is not None:
        parts.append(f"the sequence-graph control alone changes it by "
                     f"{control.relative or 0.0:+.1%}")
    text = "; ".join(parts) + ". "
    if over_control is not None:
        helps = over_control.diff.low > 0
        text += (f"Against the control, the reasoning graph adds {over_control.diff.mean:+.4f} "
                 f"NDCG@10 [{over_control.diff.low:+.4f}, {over_control.diff.high:+.4f}]: it "
                 + ("helps, measurably." if helps else
                    "does not measurably help here (the interval includes 0 or lies below)."))
    met = (llmrg.relative or 0.0) >= AIM_NDCG_GAIN and llmrg.diff.low > 0
    text += f" The +{AIM_NDCG_GAIN:.0%} NDCG@10 aim is {'met' if met else 'not met'}."
    if "genre-heuristic" in info["graph_backends"]:
        text += (" These graphs are the LLM-free genre stand-in, so this is no verdict on the "
                 "LLM: rerun with the LLM graphs (reasonrec build-graphs).")
    return text


#: LLMRG's ablation rows and the stage each one leaves out, for the verdict.
ABLATIONS = (("llmrg-no-verify", "verification"), ("llmrg-no-div", "divergent extension"))


def ablation_sentences(rows: Sequence[dict[str, Any]]) -> str:
    """What each LLMRG stage adds, read from its ablation row's difference to LLMRG: the
    stage's contribution is LLMRG minus the row without it (a sentence per ablation run)."""
    by_name = {row["name"]: row for row in rows}
    text = ""
    for name, stage in ABLATIONS:
        paired = (by_name.get(name) or {}).get("vs_llmrg")
        if not paired:
            continue
        diff = paired["NDCG@10"]["diff"]   # the ablation minus LLMRG
        low, high = -diff["high"], -diff["low"]
        text += (f" LLMRG with {stage} against without it: {-diff['mean']:+.4f} NDCG@10 "
                 f"[{low:+.4f}, {high:+.4f}]: {stage} "
                 + ("helps, measurably." if low > 0 else "hurts, measurably." if high < 0
                    else "makes no measurable difference on this sample."))
    return text


def _why_unchanged(best_epoch: int, signals: Sequence[CandidateSignal]) -> str:
    """When validation kept the base model for LLMRG, the plain reason, with the numbers of
    the test points' candidate signal."""
    if best_epoch != 0:
        return ""
    return (" Validation kept the starting point for LLMRG (no training epoch beat the base "
            "model), so its row equals the base and the ablations cannot show what "
            "verification or divergence add on this sample. " + signal_sentence(signals))


def counterfactual_latency(explainer: Explainer, user_ids: Sequence[str],
                           seed: int) -> dict[str, Any]:
    """Milliseconds from a removal to the new fused top-k, one random removal per user.

    The removal is a random chain, reasoning node (intent or candidate) or
    session item (which also re-encodes E_base), each kind equally likely
    among those the graph has.
    """
    rng = np.random.default_rng(seed)
    times: list[float] = []
    kinds: Counter[str] = Counter()
    by_kind: dict[str, list[float]] = {}
    for n, user_id in enumerate(user_ids):
        point = explainer.point(user_id)
        chains, nodes = reasoning_elements(point.prefix)
        session = node_ids(point.prefix, NodeKind.SESSION_ITEM)
        options = {"chain": chains, "node": nodes, "session_item": session}
        kind = str(rng.choice([k for k, v in options.items() if v]))
        chosen = str(rng.choice(options[kind]))
        ids = {"chains": [chosen]} if kind == "chain" else {"nodes": [chosen]}
        if n == 0:   # the first call pays one-off allocations; time a fresh point after it
            explainer.counterfactual(point, explainer.removal(point, **ids))
            point = explainer.point(user_id)
        start = time.perf_counter()   # from the clicked ids to the new top-k
        explainer.counterfactual(point, explainer.removal(point, **ids))
        elapsed = (time.perf_counter() - start) * 1000.0
        times.append(elapsed)
        kinds[kind] += 1
        by_kind.setdefault(kind, []).append(elapsed)
    values = np.asarray(times)
    return {"users": len(times), "p50_ms": float(np.percentile(values, 50)),
            "p95_ms": float(np.percentile(values, 95)), "max_ms": float(values.max()),
            "removals": dict(kinds),
            "p95_ms_by_kind": {k: float(np.percentile(v, 95)) for k, v in by_kind.items()},
            "aim_p95_ms": AIM_P95_MS, "meets_aim": bool(np.percentile(values, 95) <= AIM_P95_MS)}


def faithfulness(explainer: Explainer, user_ids: Sequence[str]) -> dict[str, Any]:
    """Deletion-curve and fidelity aggregates over the users' fused top-k explanations.

    A user is *compared* when at least one of their top-k items has 2+ paths and
    a rank that reacts to removing them (``DeletionCurve.outcome``); the user's
    explanation order is faster when, summed over those items, its area under
    the rank-vs-deletions curve exceeds the random orders' mean. Users and items
    without a defined comparison are counted apart: ``users_no_reaction`` (items
    with 2+ paths, none of which moves), ``users_too_few_paths``; the share of
    *all* users is reported next to the share of compared users.
    """
    return faithfulness_of([explainer.explain(u) for u in user_ids], explainer.random_orders)


def faithfulness_of(explanations: Sequence[Explanation], random_orders: int) -> dict[str, Any]:
    """:func:`faithfulness` over explanations already made (``bench explanations`` too)."""
    user_ids = [e.user for e in explanations]
    users: Counter[str] = Counter()
    items: Counter[str] = Counter()
    legacy_faster = legacy_users = 0
    smooth_users: Counter[str] = Counter()
    smooth_items: Counter[str] = Counter()
    plus, minus, paths, seconds = [], [], [], []
    supported = 0
    for explanation in explanations:
        seconds.append(explanation.seconds)
        users[user_outcome(explanation.faithfulness, explanation.items)] += 1
        # The definition before the no-reaction split: every item with 2+ paths compared.
        legacy = [i for i in explanation.items if i.deletion.faster is not None]
        if legacy:
            legacy_users += 1
            legacy_faster += explanation_order_faster(legacy)
        # The smooth-rank curves: every item with 2+ paths, whether or not its rank moves.
        smooth = [d for d in (smooth_area_difference(i.deletion) for i in explanation.items)
                  if d is not None]
        if smooth:
            smooth_users[smooth_outcome(smooth)] += 1
            smooth_items.update(smooth_outcome([d]) for d in smooth)
        for item in explanation.items:
            paths.append(len(item.paths))
            supported += item.fidelity.explanation_paths > 0
            plus.append(item.fidelity.plus)
            minus.append(item.fidelity.minus)
            items[str(item.deletion.outcome)] += 1
    compared_users = users["faster"] + users["slower"] + users["tied"]
    compared_items = items["faster"] + items["slower"] + items["tied"]
    share = users["faster"] / compared_users if compared_users else None
    return {"users": len(user_ids), "users_compared": compared_users,
            "users_faster": users["faster"], "users_slower": users["slower"],
            "users_tied": users["tied"], "users_no_reaction": users["no_reaction"],
            "users_too_few_paths": users["too_few_paths"],
            "share_users_faster": share,
            "share_all_users_faster": users["faster"] / len(user_ids) if user_ids else None,
            "items": len(plus), "items_too_few_paths": items["too_few_paths"],
            "items_no_reaction": items["no_reaction"], "items_compared": compared_items,
            "items_faster": items["faster"], "items_slower": items["slower"],
            "items_tied": items["tied"],
            "share_items_faster": items["faster"] / compared_items if compared_items else None,
            "share_items_tied": items["tied"] / compared_items if compared_items else None,
            # The definition before the no-reaction split: every item with 2+ paths compared,
            # flat ones counting as "not faster". Kept for comparison with older benches.
            "legacy_share_users_faster": legacy_faster / legacy_users if legacy_users else None,
            **_smooth_shares(smooth_users, smooth_items),
            "fidelity_plus": float(np.mean(plus)) if plus else None,
            "fidelity_minus": float(np.mean(minus)) if minus else None,
            "share_items_with_support": supported / len(plus) if plus else None,
            "mean_paths_per_item": float(np.mean(paths)) if paths else None,
            "random_orders": random_orders,
            "explain_seconds_p50": float(np.median(seconds)) if seconds else None,
            "aim_share": AIM_FASTER_SHARE,
            "meets_aim": share is not None and share >= AIM_FASTER_SHARE}


def _smooth_shares(users: Counter[str], items: Counter[str]) -> dict[str, Any]:
    """The deletion comparison on smooth ranks (users and items with 2+ paths), JSON-ready."""
    n_users, n_items = sum(users.values()), sum(items.values())
    return {"smooth_users_compared": n_users, "smooth_users_faster": users["faster"],
            "smooth_users_slower": users["slower"], "smooth_users_tied": users["tied"],
            "smooth_share_users_faster": users["faster"] / n_users if n_users else None,
            "smooth_items_compared": n_items, "smooth_items_faster": items["faster"],
            "smooth_share_items_faster": items["faster"] / n_items if n_items else None}


def bench_fusion(workspace: FusionWorkspace, *, variants: Sequence[str] = tuple(VARIANTS),
                 min_users: int = MIN_BENCH_USERS, retrain: bool = False,
                 log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The fusion bench (see the module docstring).

    Args:
        workspace: base model, sample and graphs.
        variants: fused rows to run (``llmrg`` is needed for latency and faithfulness).
        min_users: refuse smaller samples (the issue asks for at least 300).
        retrain: train every variant afresh instead of reusing matching saved runs.
        log: progress lines.

    Returns:
        a JSON-ready dict: ``sample``, ``rows``, ``reasoning_vs_control``,
        ``verdict``, ``latency``, ``faithfulness``, ``machine``, ``settings``.
    """
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown fusion variant {name!r}; choose from {', '.join(VARIANTS)}")
    settings = workspace.settings
    if len(workspace.users) < min_users:
        raise ValueError(f"the fusion bench needs at least {min_users} users, the sample has "
                         f"{len(workspace.users)} (fusion.users)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        base_values = per_user_metrics(workspace.base_ranks("test"))
        popular = popular_items(workspace)
        rows: list[dict[str, Any]] = [{
            "name": BASE_ROW, "description": f"best base ({workspace.base.name})",
            "metrics": {m: _interval(bootstrap_mean(v, resamples=settings.bootstrap,
                                                    seed=settings.seed))
                        for m, v in base_values.items()},
            "vs_base": None, "fit": None, "run_dir": str(workspace.base.run_dir),
            "cost": {**llm_cost(workspace, None), "training_seconds": None},
            "popular_top10_share": popularity_share(workspace, None, popular)}]
        tables: dict[str, dict[str, PairedDifference]] = {}
        values: dict[str, dict[str, np.ndarray]] = {}
        runs = {}
        for name in variants:
            run = workspace.fit(name) if retrain else workspace.fused(name)
            runs[name] = run
            values[name] = per_user_metrics(workspace.ranks(run, "test"))
            tables[name] = paired_table(base_values, values[name], resamples=settings.bootstrap,
                                        seed=settings.seed)
            rows.append({"name": name, "description": VARIANTS[name].description,
                         "metrics": {m: _interval(d.b) for m, d in tables[name].items()},
                         "vs_base": {m: _difference(d) for m, d in tables[name].items()},
                         "fit": {"best_epoch": run.report.best_epoch,
                                 "epochs_run": len(run.report.epochs),
                                 "seconds": run.report.seconds,
                                 "best_valid_ndcg10": run.report.best_valid.get("NDCG@10"),
                                 "start_valid_ndcg10": (run.report.start_valid or {}).get(
                                     "NDCG@10"),
                                 "selection": settings.selection.value},
                         "run_dir": str(run.directory),
                         "cost": {**llm_cost(workspace, VARIANTS[name]),
                                  "training_seconds": run.report.seconds},
                         "popular_top10_share": popularity_share(workspace, run, popular)})
            log(f"{name}: test NDCG@10 {tables[name]['NDCG@10'].b.mean:.4f} "
                f"(base {tables[name]['NDCG@10'].a.mean:.4f})")
        for row in rows[1:]:   # every fused row against the control and LLMRG too
            for other, field in (("seqgraph", "vs_control"), ("llmrg", "vs_llmrg")):
                if other in values and other != row["name"]:
                    row[field] = {m: _difference(d) for m, d in paired_table(
                        values[other], values[row["name"]], resamples=settings.bootstrap,
                        seed=settings.seed).items()}
        over_control = None
        if "llmrg" in values and "seqgraph" in values:
            over_control = paired_bootstrap(values["seqgraph"]["NDCG@10"],
                                            values["llmrg"]["NDCG@10"],
                                            resamples=settings.bootstrap, seed=settings.seed)
        result: dict[str, Any] = {
            "sample": workspace.describe(), "rows": rows,
            "reasoning_vs_control": None if over_control is None else {
                "metric": "NDCG@10", "control": over_control.a.mean,
                "llmrg": over_control.b.mean, **_difference(over_control)},
            "verdict": verdict(workspace, tables.get("llmrg", {}).get("NDCG@10"),
                               tables.get("seqgraph", {}).get("NDCG@10"), over_control)}
        result["verdict"] += ablation_sentences(rows)
        if "llmrg" in runs:
            signals = [candidate_signal(workspace.points, workspace.base_ranks(role), role)
                       for role in ROLES]
            result["verdict"] += _why_unchanged(runs["llmrg"].report.best_epoch, signals)
            result["candidate_signal"] = [signal.as_json() for signal in signals]
        if "llmrg" in runs:
            explainer = workspace.explainer(runs["llmrg"])
            rng = np.random.default_rng(settings.seed)
            ids = [u.user_id for u in workspace.user_graphs]
            log("timing counterfactual rescoring")
            result["latency"] = counterfactual_latency(
                explainer, list(rng.choice(ids, min(settings.latency_users, len(ids)),
                                           replace=False)), settings.seed)
            log("measuring faithfulness")
            result["faithfulness"] = faithfulness(
                explainer, list(rng.choice(ids, min(settings.faithfulness_users, len(ids)),
                                           replace=False)))
        result["popularity_bias"] = {
            "popular_items": len(popular), "share_of_catalogue": POPULAR_SHARE,
            "meaning": "share of each row's test top-10 items among the catalogue's most "
                       "popular 5% by training interactions (rows: popular_top10_share)",
            "position_bias": "not measured: LM ranking scores each candidate alone after the "
                             "same prompt, so no candidate list (and no list order) is shown "
                             "to the LLM"}
        result["machine"] = {"cpu_count": os.cpu_count(), "torch_threads": 1,
                             "platform": platform.platform(),
                             "python": platform.python_version(), "torch": torch.__version__}
        result["settings"] = settings.model_dump()
        result["seconds"] = time.perf_counter() - started
        return result
    finally:
        torch.set_num_threads(threads)
