"""Fusion commands of ``reasonrec``: ``bench fusion``, ``explain``, ``fusion fit|bundle``.

:func:`register` adds them to the CLI's groups (``reasonrec.cli_common``).
Errors are raised as ValueError, LookupError or FileNotFoundError, which the
CLI's entry point prints as one line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups
from reasonrec.fusion import build_missing_graph, graph_source, workspace
from reasonrec.report_rows import score_change

if TYPE_CHECKING:
    from reasonrec.studio import Studio

GRAPHS_HELP = ("Graph source: auto (reasoning store, then the shipped bundle), store, bundle, "
               "genre (LLM-free stand-in), a directory or a .jsonl.gz bundle.")


def _log(line: str) -> None:
    typer.echo(line, err=True)


def _table(result: dict[str, Any]) -> str:
    lines = [f"{result['sample']['users']} users ({result['sample']['graph_source']}); "
             f"test metrics with 95% CI; diff vs base"]
    for row in result["rows"]:
        cells = []
        for metric in ("HR@10", "NDCG@10", "MRR@10"):
            m = row["metrics"][metric]
            cells.append(f"{metric} {m['mean']:.4f} [{m['low']:.4f},{m['high']:.4f}]")
        diff = row["vs_base"]["NDCG@10"] if row["vs_base"] else None
        tail = (f"  dNDCG@10 {diff['diff']['mean']:+.4f} [{diff['diff']['low']:+.4f},"
                f"{diff['diff']['high']:+.4f}]") if diff else ""
        lines.append(f"{row['name']:>16}: {'  '.join(cells)}{tail}")
    lines.append(result["verdict"])
    if "latency" in result:
        lat = result["latency"]
        lines.append(f"counterfactual rescoring: p50 {lat['p50_ms']:.1f} ms, p95 "
                     f"{lat['p95_ms']:.1f} ms over {lat['users']} users")
    if "faithfulness" in result:
        f = result["faithfulness"]
        share = "n/a" if f["share_users_faster"] is None else f"{f['share_users_faster']:.0%}"
        smooth = f.get("smooth_share_users_faster")
        smooth_share = "n/a" if smooth is None else f"{smooth:.0%}"
        lines.append(f"faithfulness: explanation order faster than random for {share} of "
                     f"{f['users_compared']} users whose rank reacts ({smooth_share} of "
                     f"{f.get('smooth_users_compared', 0)} on smooth ranks); fidelity+ "
                     f"{f['fidelity_plus']:.2f}, fidelity- {f['fidelity_minus']:.2f}")
    return "\n".join(lines)


def build_graph(st: Studio, user: str) -> None:
    """Build a missing graph live, as the app does; LLM failures become one clear line."""
    from reasoning.backend import LLMError
    from reasoning.builder import EmptySessionError

    try:
        build_missing_graph(st, user, _log)
    except EmptySessionError as exc:
        raise LookupError(f"user {user} has no history to reason over: {exc}") from None
    except LLMError as exc:
        raise ValueError(f"could not build user {user}'s reasoning graph: {exc}") from None


def _lm_history_effects(st: Studio, user: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """LM ranking's evidence, on demand (LLM calls): which prompt titles raise each item."""
    from reasoning.backend import LLMError
    from reasonrec.lm_scores import explain_history

    try:
        return explain_history(st, user, payload["point"]["history_length"],
                               [i["index"] for i in payload["items"]])
    except LLMError as exc:
        raise ValueError(f"could not ask the LLM which recent films raise each item: "
                         f"{exc}") from None


def _explanation_text(payload: dict[str, Any]) -> str:
    point = payload["point"]
    lines = [f"user {payload['user']} at step {point['step']} of {point['steps']} "
             f"({point['role']}; next: {point['target']['title']}, base rank "
             f"{point['target_rank_base']}, fused rank {point['target_rank_fused']})",
             f"{'base':<40} {'fused':<40} shift"]
    for base, fused in zip(payload["top_k"]["base"], payload["top_k"]["fused"]):
        lines.append(f"{base['rank']:>2}. {base['title'][:36]:<36} {fused['rank']:>2}. "
                     f"{fused['title'][:36]:<36} {fused['rank_shift']:+d}")
    for shown in payload.get("inputs", []):   # e.g. LLM4SBR's two LLM interests
        items = ", ".join(f"{i['title']} ({i['weight']:.2f})" for i in shown["items"])
        left = ", ".join(i["title"] for i in shown["left"]) or "none"
        lines.append(f"{shown['label']}: {shown['text'] or '(no title in the answer)'} -> "
                     f"{items or 'no items'}; zeroed: next item at rank "
                     f"{shown['target_rank_after']}, leaving the top {payload['k']}: {left}")
    for found in payload.get("lm_history_effects", []):   # LM ranking's leave-one-out
        raised = ", ".join(f"{e['title'][:30]} ({e['effect']:+.3f})"
                           for e in found["effects"][:3] if e["effect"] > 0) or "none"
        lines.append(f"  {found['title'][:40]}: LM score {found['score']:.3f}; raised most by "
                     f"{raised}")
    for item in payload["items"]:
        best = item["paths"][0] if item["paths"] else None
        effect = (f" [strongest path {best['id']}: score "
                  f"{score_change(best['effect']['delta_score'])}, rank "
                  f"{best['effect']['delta_rank']:+d}]") if best else ""
        lines.append(f"  {item['rank']:>2}. {item['title'][:40]}: {item['summary']}{effect}")
    return "\n".join(lines)


def register(groups: CommandGroups) -> None:
    """Add the fusion commands: ``bench fusion``, ``explain``, ``fusion fit`` and
    ``fusion bundle``."""

    @groups.bench.command("fusion")
    def bench_fusion_command(
            ctx: typer.Context,
            users: Optional[int] = typer.Option(None, "--users", help="Sample size (>= 300)."),
            graphs: Optional[str] = typer.Option(None, "--graphs", help=GRAPHS_HELP),
            variants: Optional[str] = typer.Option(None, "--variants",
                                                   help="Comma-separated rows (default all)."),
            retrain: bool = typer.Option(False, "--retrain", help="Ignore saved fused runs."),
            out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Base vs fused (control, LLMRG, ablations) on the same users, with paired CIs,
        counterfactual latency and faithfulness; writes JSON."""
        from models.bench_fusion import bench_fusion
        from models.fusion.samples import VARIANTS
        from models.fusion.settings import MIN_BENCH_USERS

        st = common.studio(ctx, {"fusion": dict(users=users, graphs=graphs)})
        settings = st.config.fusion
        if settings.users < MIN_BENCH_USERS:   # before minutes of base training, not after
            raise ValueError(f"the fusion bench needs at least {MIN_BENCH_USERS} users; "
                             f"fusion.users is {settings.users}")
        names = ([v.strip() for v in variants.split(",") if v.strip()] if variants
                 else list(VARIANTS))
        result = bench_fusion(workspace(st, settings, _log), variants=names, retrain=retrain,
                              log=_log)
        path = out or st.config.bench_dir / "fusion.json"
        common.write_json(path, result)
        _log(f"wrote {path}")
        common.emit(result, as_json, _table(result))

    @groups.root.command("explain")
    def explain_command(
            ctx: typer.Context, user: str = typer.Option(..., "--user"),
            k: int = typer.Option(10, "--k", min=1, max=1000),
            step: Optional[int] = typer.Option(None, "--step", min=0,
                                               help="Window step (default: the last, "
                                                    "predicting the test target)."),
            item: Optional[list[str]] = typer.Option(None, "--item",
                                                     help="Explain this item id (repeatable; "
                                                          "default: the fused top-k)."),
            graphs: Optional[str] = typer.Option(None, "--graphs", help=GRAPHS_HELP),
            strategy: Optional[str] = typer.Option(
                None, "--strategy", "--variant",
                help="The fused model to explain: a registered variant (llmrg, seqgraph, "
                     "llmrg-no-div, ...; default [fusion] variant)."),
            include_seen: bool = typer.Option(False, "--include-seen"),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Top-k base vs fused, branch effects and measured explanation paths for one user."""
        st = common.studio(ctx, {"fusion": dict(graphs=graphs, variant=strategy)})
        settings = st.config.fusion
        # An unknown user or item, or a user without a graph, fails before any model work.
        st.dataset.user_index(user)
        items = [st.dataset.catalogue.by_id(i).index for i in item] if item else None
        if graph_source(st, settings).get(user) is None:
            if settings.graphs != "auto":   # store/bundle/genre: the user asked for no LLM call
                raise LookupError(f"no reasoning graph for user {user} ({settings.graphs} "
                                  f"graphs); build it with `reasonrec build-graphs --users "
                                  f"{user}`, or use --graphs genre")
            build_graph(st, user)
        ws = workspace(st, settings, _log)
        explainer = ws.explainer(ws.fused(settings.variant), k=k, exclude_seen=not include_seen)
        explanation = explainer.explain(user, step, items)
        payload = explanation.model_dump(mode="json", by_alias=True)
        from models.fusion.samples import variant as fusion_variant
        from models.fusion.strategy import Need

        if Need.LM_SCORES in fusion_variant(settings.variant).needs:
            payload["lm_history_effects"] = _lm_history_effects(st, user, payload)
        common.emit(payload, as_json, _explanation_text(payload))

    @groups.fusion.command("fit")
    def fit_command(ctx: typer.Context,
                    variant: Optional[str] = typer.Option(None, "--variant"),
                    users: Optional[int] = typer.Option(None, "--users"),
                    graphs: Optional[str] = typer.Option(None, "--graphs", help=GRAPHS_HELP),
                    as_json: bool = typer.Option(False, "--json")) -> None:
        """Train a fused variant on the seeded user sample and save the run."""
        st = common.studio(ctx, {"fusion": dict(variant=variant, users=users, graphs=graphs)})
        settings = st.config.fusion
        run = workspace(st, settings, _log).fit(settings.variant)
        payload = {"variant": run.variant, "run_dir": str(run.directory),
                   "fit": run.report.model_dump(), "metrics": run.metrics}
        test = run.metrics["test"]
        common.emit(payload, as_json,
                    f"{run.directory}\nbest epoch {run.report.best_epoch}; sample "
                    f"test NDCG@10={test['NDCG@10']:.4f} HR@10={test['HR@10']:.4f}")

    @groups.fusion.command("bundle")
    def bundle_command(ctx: typer.Context,
                       out: Path = typer.Option(..., "--out", help="The .jsonl.gz to write, e.g. "
                                                                   "assets/graphs/ml-100k.jsonl.gz."),
                       users: Optional[int] = typer.Option(None, "--users"),
                       graphs: str = typer.Option("store", "--graphs", help=GRAPHS_HELP)) -> None:
        """Bundle the sampled users' graphs (default: from the reasoning store) for shipping."""
        from models.fusion.samples import load_user_graphs, sample_users
        from models.graph_data import IntentIndex
        from models.graph_sources import graph_backend, source_label, write_bundle
        from reasoning.prompts import load_intents

        st = common.studio(ctx, {"fusion": dict(users=users, graphs=graphs)})
        settings = st.config.fusion
        source = graph_source(st, settings)
        # Placing each graph checks it is that user's window before the test target.
        placed = load_user_graphs(st.dataset, sample_users(st.split, settings.users, settings.seed),
                                  source, IntentIndex(load_intents().labels))
        backends = sorted({graph_backend(u.graph) for u in placed})
        path = write_bundle(out, [u.graph for u in placed],
                            {"sample_seed": settings.seed, "users": len(placed),
                             "source": source_label(source), "backends": backends})
        typer.echo(str(path))
