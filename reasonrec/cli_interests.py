"""``reasonrec fusion interests``: LLM4SBR's stage 1 for the fusion sample (issue #19).

:func:`register` adds the command to the ``fusion`` group; the CLI's helpers
come from ``reasonrec.cli_common``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups

def _log(line: str) -> None:
    typer.echo(line, err=True)


def register(groups: CommandGroups) -> None:
    """Add ``interests`` to the ``fusion`` group."""
    from reasonrec.cli_reasoning import (BACKEND_OPTION, MODEL_OPTION, THREADS_OPTION,
                                         URL_OPTION)

    @groups.fusion.command("interests")
    def interests_command(
            ctx: typer.Context,
            users: Optional[int] = typer.Option(None, "--users", help="Sample size (the "
                                                "fusion sample, default 300)."),
            limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                                help="Only the sample's first N users."),
            graphs: Optional[str] = typer.Option(None, "--graphs", help="Where the windows come "
                                                 "from (as for `reasonrec bench fusion`)."),
            model: Optional[Path] = MODEL_OPTION, backend: Optional[str] = BACKEND_OPTION,
            url: Optional[List[str]] = URL_OPTION, threads: Optional[int] = THREADS_OPTION,
            bundle: Optional[Path] = typer.Option(
                None, "--bundle", help="Then write the sample's interests built so far to this "
                                       ".jsonl.gz (e.g. assets/interests/ml-100k.jsonl.gz); "
                                       "building the rest resumes from it."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """LLM4SBR stage 1: the LLM's long- and short-term interest at every point of the
        fusion sample, localized to catalogue items; resumable."""
        from reasoning.backend import LLMError
        from reasonrec.cli_reasoning import ReasoningUserError, _llm_overrides, reasoning_config
        from reasonrec.interests import build_interests, bundle_interests

        st = common.studio(ctx, {"fusion": dict(users=users, graphs=graphs)})
        config = reasoning_config(ctx, **_llm_overrides(model, None, backend, url, threads))
        try:
            summary, key, directory = build_interests(st, st.config.fusion, config, limit, _log)
        except LLMError as exc:
            raise ReasoningUserError(f"the LLM failed, nothing was stored for the user in "
                                     f"progress (rerun to continue): {exc}") from None
        payload = {"summary": summary.__dict__, "key": key.__dict__, "store": str(directory)}
        if bundle is not None:
            path, written, missing = bundle_interests(st, st.config.fusion, config, bundle)
            payload["bundle"] = {"path": str(path), "users": written, "missing": missing}
        built = max(summary.users_built, 1)
        human = (f"{summary.users_built} users built, {summary.users_skipped} already done, "
                 f"{summary.points} points in {summary.seconds:.0f} s; {summary.llm_calls} LLM "
                 f"calls, {summary.kb_hits} KB hits, "
                 f"{(summary.tokens_in + summary.tokens_out) / built:.0f} tokens per user; "
                 f"{summary.unusable_answers} answers without a title\n{directory}"
                 + (f"\nbundle: {payload['bundle']['path']} ({payload['bundle']['users']} "
                    f"users, {payload['bundle']['missing']} missing)" if "bundle" in payload
                    else ""))
        common.emit(payload, as_json, human)
