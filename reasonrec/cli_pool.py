"""``reasonrec bench pool`` (#21): sessions per minute on 1 local llama_cpp.server, then on N.

:func:`register` adds the command to the CLI's ``bench`` group; the CLI's helpers
are looked up when the command runs (``reasonrec.cli`` imports this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups

def _log(line: str) -> None:
    typer.echo(line, err=True)


def register(groups: CommandGroups) -> None:
    """Add ``pool`` to the ``bench`` group."""

    @groups.bench.command("pool")
    def bench_pool_command(
            ctx: typer.Context,
            servers: int = typer.Option(2, "--servers", min=1, max=16,
                                        help="llama_cpp.server processes of the pool run."),
            users: int = typer.Option(2, "--users", min=1,
                                      help="Graphs built (cold, KB off) on 1 server and on N."),
            window: int = typer.Option(1, "--window", min=1, max=200,
                                       help="Session window; HTTP scoring costs seconds per "
                                            "option, so keep it small."),
            threads: int = typer.Option(1, "--threads", min=1, help="CPU threads per server."),
            out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Start N llama_cpp.server processes on loopback and compare sessions per minute with
        one; give tokens per session and a server's tokens per second for the GPU-pool sum."""
        from reasonrec.bench_pool import bench_pool, pool_text
        from reasonrec.local_servers import ServerStartError

        st = common.studio(ctx)
        try:
            payload = bench_pool(st.dataset, st.reasoning_settings(), servers, users, window=window,
                                 threads=threads, log=_log)
        except ServerStartError as exc:
            _log(f"bench pool: {exc}")
            raise typer.Exit(1) from None
        path = out or st.config.bench_dir / "pool.json"
        common.write_json(path, payload)
        _log(f"wrote {path}")
        common.emit(payload, as_json, pool_text(payload))
