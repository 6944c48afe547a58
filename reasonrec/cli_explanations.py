"""``reasonrec bench explanations`` (#18): reach, evidence, effect and faithfulness of the
fused top-k explanations over the fused models' user sample.

:func:`register` adds the command to the CLI's ``bench`` group; the CLI's
helpers (studio, printer, atomic JSON writer) come from ``reasonrec.cli_common``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups
GRAPHS_HELP = ("Graph source: auto (reasoning store, then the shipped bundle), store, bundle, "
               "genre (LLM-free stand-in), a directory or a .jsonl.gz bundle.")


def _log(line: str) -> None:
    typer.echo(line, err=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _text(result: dict[str, Any]) -> str:
    reach, faithful = result["reach"], result["faithfulness"]
    lines = [
        f"{result['users']} users, {reach['items']} fused top-{result['k']} items",
        f"a reasoning path reaches the item: {_pct(reach['share_reached'])} "
        f"(aim {reach['aim_reached']:.0%})",
        f"  of those, numeric evidence and a measured effect: "
        f"{_pct(reach['share_numeric_evidence_and_effect'])} "
        f"(aim {reach['aim_numeric_evidence_and_effect']:.0%}); through co-watch "
        f"{_pct(reach['share_reached_by_co_watch'])}, an interest "
        f"{_pct(reach['share_reached_by_interest'])}, genres only "
        f"{_pct(reach['share_reached_by_genres_only'])}; supported (removal lowers it) "
        f"{_pct(reach['share_reached_and_supported'])}",
        f"explanation order beats random on the deletion curve for "
        f"{_pct(faithful['share_users_faster'])} of {faithful['users_compared']} users "
        f"(aim {faithful['aim_share']:.0%}); on smooth ranks, which move for every item "
        f"with 2+ paths: {_pct(faithful.get('smooth_share_users_faster'))} of "
        f"{faithful.get('smooth_users_compared', 0)} users"]
    moved = result.get("reliance", {}).get("share_rank_moves")
    if moved is not None:
        lines.append(f"removing all reasoning moves the item's rank for {_pct(moved)} of items")
    for example in result["examples"]:
        lines.append(f"user {example['user']}, #{example['rank']} {example['item']}: "
                     f"{example['summary']}")
    return "\n".join(lines)


def register(groups: CommandGroups) -> None:
    """Add ``explanations`` to the ``bench`` group."""

    @groups.bench.command("explanations")
    def bench_explanations_command(
            ctx: typer.Context,
            users: Optional[int] = typer.Option(None, "--users", min=1,
                                                help="Explain only the sample's first N users "
                                                     "(a quick run; default all)."),
            graphs: Optional[str] = typer.Option(None, "--graphs", help=GRAPHS_HELP),
            out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Share of fused top-10 items a reasoning path reaches, with numeric evidence and a
        measured effect, and the deletion-curve faithfulness; writes explanations.json."""
        from models.bench_explanations import bench_explanations
        from reasonrec.fusion import workspace

        st = common.studio(ctx, {"fusion": dict(graphs=graphs)})
        settings = st.config.fusion
        ws = workspace(st, settings, _log)
        explainer = ws.explainer(ws.fused(settings.variant))   # its localizer: reasonrec.fusion
        ids = [u.user_id for u in ws.user_graphs]
        ids = ids[:users] if users else ids
        result = bench_explanations(explainer, ids, log=_log)
        result["sample"] = ws.describe()
        path = out or st.config.bench_dir / "explanations.json"
        common.write_json(path, result)
        _log(f"wrote {path}")
        common.emit(result, as_json, _text(result))
