"""The ``reasonrec`` command line.

Every command maps to a call on :class:`reasonrec.studio.Studio` (or the
reasoning/fusion layers); errors print one line and exit non-zero. Commands
live in the ``reasonrec.cli_*`` modules, each with ``register(groups)`` (see
``reasonrec.cli_common``); this module creates the groups, registers every
module and runs the app.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from models.data.errors import DataError
from reasonrec import (cli_base, cli_explanations, cli_fusion, cli_interests, cli_lm_rank,
                       cli_localize, cli_pool, cli_quality, cli_reasoning, cli_report)
from reasonrec.cli_common import CommandGroups, UserError
from reasonrec.cli_options import GlobalOptionsGroup
from reasonrec.config import ConfigError

app = typer.Typer(help="ReasonRec Studio: explainable recommendation with LLM reasoning graphs.",
                  cls=GlobalOptionsGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False)
bench_app = typer.Typer(help="Benchmarks that write JSON.", no_args_is_help=True)
fusion_app = typer.Typer(help="Fused models: fit them, bundle their graphs, build their "
                              "offline inputs.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(fusion_app, name="fusion")

EXIT_USER_ERROR = 2


@app.callback()   # these options may also follow the subcommand (reasonrec.cli_options)
def _global(ctx: typer.Context,
            config: Optional[Path] = typer.Option(None, "--config", help="TOML config file."),
            data: Optional[Path] = typer.Option(None, "--data",
                                                help="Dataset directory (RecBole atomic or GroupLens)."),
            data_dir: Optional[Path] = typer.Option(None, "--data-dir",
                                                    help="Cache for data, runs and the KB."),
            device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
            ) -> None:
    overrides = {"data": {"path": str(data) if data else None,
                          "data_dir": str(data_dir) if data_dir else None},
                 "train": {"device": device}}
    ctx.obj = {"config_path": config, "overrides": overrides}


GROUPS = CommandGroups(root=app, bench=bench_app, fusion=fusion_app)
for _module in (cli_base, cli_reasoning, cli_localize, cli_fusion, cli_interests, cli_lm_rank,
                cli_explanations, cli_quality, cli_pool, cli_report):
    _module.register(GROUPS)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except (ConfigError, DataError, UserError, LookupError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
