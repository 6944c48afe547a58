"""``reasonrec report`` (#18): the stakeholder report of one user, as the app exports it.

Built like ``reasonrec explain`` (``reasonrec.cli_fusion``): the same config,
graph source (``--graphs auto`` builds a missing graph live on the local LLM),
fused run and explainer as the app's (``app.state.get_fusion``), then
``reasonrec.report`` writes the file the app's "Download HTML report" gives
for the same user and point with nothing switched off. The file is written
atomically (``models.data.atomic.write_atomic``): a failed run leaves the old file
or none. Bad input is a ValueError/LookupError, which the CLI prints as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups
from reasonrec.cli_fusion import GRAPHS_HELP, build_graph

REPORT_SUFFIXES = (".html", ".htm")


def _log(line: str) -> None:
    typer.echo(line, err=True)


def check_out(out: Path) -> Path:
    """The report's path, refused before any model work when it cannot be an HTML file."""
    out = Path(out).expanduser()
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise ValueError(f"--out {out}: the report is an HTML file; name it *.html")
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; name the .html file to write")
    return out


def register(groups: CommandGroups) -> None:
    """Add ``report`` to the ``reasonrec`` app."""

    @groups.root.command("report")
    def report_command(
            ctx: typer.Context, user: str = typer.Option(..., "--user"),
            out: Path = typer.Option(..., "--out", help="The .html file to write."),
            step: Optional[int] = typer.Option(None, "--step", min=0,
                                               help="Window step (default: the last, "
                                                    "predicting the test target)."),
            graphs: Optional[str] = typer.Option(None, "--graphs", help=GRAPHS_HELP)) -> None:
        """A self-contained offline HTML report for one user: the top 5 and why, what the
        reasoning changed, then the details; the same file as the app's export."""
        from models.data.atomic import write_atomic
        from reasonrec.fusion import graph_source, workspace
        from reasonrec.report import report_html, report_input

        out = check_out(out)
        st = common.studio(ctx, {"fusion": dict(graphs=graphs)})
        settings = st.config.fusion
        # An unknown user, a step outside the window or a missing graph fails before any
        # model work (the graph's own window is checked again when the point is placed).
        st.dataset.user_index(user)
        window = st.reasoning_settings().l_tru
        if step is not None and step >= window:
            raise ValueError(f"--step {step} is outside the history window (steps 0..{window - 1})")
        if graph_source(st, settings).get(user) is None:
            if settings.graphs != "auto":   # store/bundle/genre: the user asked for no LLM call
                raise LookupError(f"no reasoning graph for user {user} ({settings.graphs} "
                                  f"graphs); build it with `reasonrec build-graphs --users "
                                  f"{user}`, or use --graphs genre")
            build_graph(st, user)
        ws = workspace(st, settings, _log)
        explainer = ws.explainer(ws.fused(settings.variant))   # the app's explainer
        data = report_input(explainer, explainer.point(user, step))
        write_atomic(out, report_html(data).encode("utf-8"))
        _log(f"report for user {user}: top {min(5, explainer.k)} and the reasoning's effect, "
             f"then details")
        typer.echo(str(out))
