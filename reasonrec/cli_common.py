"""What every command module of the ``reasonrec`` CLI shares.

One registration style: each ``reasonrec.cli_*`` module has
``register(groups: CommandGroups)`` and adds its commands to the groups it
names; ``reasonrec.cli`` creates the groups, calls every module's ``register``
and turns :class:`UserError` (and the other errors a user can fix) into one
line. The helpers here (the studio from the global options, printing, the
atomic JSON writer) are plain imports, so no command module imports
``reasonrec.cli``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from models.data.atomic import write_atomic

if TYPE_CHECKING:
    from reasonrec.config import StudioConfig
    from reasonrec.studio import Studio


class UserError(ValueError):
    """Anything the user can fix; ``reasonrec.cli.main`` prints it as one line.

    A ``ValueError``, so that ``main`` catches it wherever it is raised.
    """


@dataclass(frozen=True)
class CommandGroups:
    """The CLI's command groups that modules add commands to.

    Attributes:
        root: ``reasonrec``.
        bench: ``reasonrec bench`` (benchmarks that write JSON).
        fusion: ``reasonrec fusion`` (fused models and their offline inputs).
    """

    root: typer.Typer
    bench: typer.Typer
    fusion: typer.Typer


def config(ctx: typer.Context, extra: dict[str, Any] | None = None) -> StudioConfig:
    """The layered config: defaults, ``--config``, the global options, then ``extra``."""
    from reasonrec.config import load_config

    overrides = dict(ctx.obj["overrides"])
    for key, value in (extra or {}).items():
        overrides[key] = {**overrides.get(key, {}), **value}
    return load_config(ctx.obj["config_path"], overrides)


def studio(ctx: typer.Context, extra: dict[str, Any] | None = None) -> Studio:
    """The facade over :func:`config`."""
    from reasonrec.studio import Studio  # lazy: keeps `--help` fast

    return Studio(config(ctx, extra))


def emit(payload: Any, as_json: bool, human: str) -> None:
    """``payload`` as JSON on stdout, or the human text."""
    typer.echo(json.dumps(payload, indent=2) if as_json else human)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically: a half-written bench file is never left behind."""
    write_atomic(Path(path).expanduser(), json.dumps(payload, indent=2).encode("utf-8"))


def log(line: str) -> None:
    """A progress line on stderr."""
    typer.echo(line, err=True)
