"""``reasonrec fusion lm-scores``: zero-shot LM ranking's offline scores (issue #19).

Scores the fusion sample's validation and test points (the best base model's
top-N, by the LLM's per-token log-likelihood of each title after the user's
recent titles) into the data directory; resumable, and a backend failure
stops the run with exit code 3 (every finished point is kept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups
from reasonrec.cli_reasoning import (EXIT_BACKEND_FAILED, MODEL_OPTION, THREADS_OPTION,
                                     reasoning_config)


def _log(line: str) -> None:
    typer.echo(line, err=True)


def _summary_text(summary: Any) -> str:
    per = summary.per_user
    cost = (f"; per user {per['llm_calls']:.1f} LLM calls, {per['tokens']:.0f} tokens, "
            f"{per['seconds']:.1f} s" if per else "")
    return (f"scored {summary.points_scored} points ({summary.points_skipped} already stored) of "
            f"{summary.users} users in {summary.wall_seconds:.1f} s: {summary.llm_calls} LLM "
            f"calls, {summary.tokens} tokens{cost}; store {summary.store}")


def register(groups: CommandGroups) -> None:
    """Add ``lm-scores`` to the ``fusion`` group."""

    @groups.fusion.command("lm-scores")
    def lm_scores_command(
            ctx: typer.Context,
            users: Optional[int] = typer.Option(None, "--users",
                                                help="Sample size (default fusion.users)."),
            top_n: int = typer.Option(50, "--top-n", min=1, max=1000,
                                      help="Candidates per point: the base model's top-N."),
            history: int = typer.Option(10, "--history", min=1, max=200,
                                        help="Recent titles in the prompt."),
            model: Optional[Path] = MODEL_OPTION, threads: Optional[int] = THREADS_OPTION,
            bundle: Optional[Path] = typer.Option(
                None, "--bundle", help="Also write the sample's scores to this .jsonl.gz "
                                       "(e.g. assets/lm_scores/ml-100k.jsonl.gz)."),
            shard: str = typer.Option("0/1", "--shard",
                                      help="K/N: score only every N-th sampled user from the "
                                           "K-th (0-based), to run N processes side by side."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Score the base model's top-N by the LLM's likelihood of each title (LM ranking)."""
        from reasoning.backend import LLMError, open_backend
        from reasoning.lm_scores import LMScoreStore, write_bundle
        from reasonrec.fusion import workspace
        from reasonrec.lm_scores import build_lm_scores, score_key, store_path

        if bundle is not None and not str(bundle).endswith(".jsonl.gz"):
            raise ValueError(f"--bundle {bundle}: the bundle must be a .jsonl.gz file")
        try:
            part, parts = (int(v) for v in shard.split("/"))
        except ValueError:
            raise ValueError(f"--shard {shard!r}: expected K/N, e.g. 1/2") from None
        if not 0 <= part < parts:
            raise ValueError(f"--shard {shard}: K must be 0..N-1")
        st = common.studio(ctx, {"fusion": dict(users=users)})
        overrides = {"model_path": model, "n_threads": threads}
        config = reasoning_config(ctx, **overrides)
        ws = workspace(st, st.config.fusion, _log)
        try:
            backend = open_backend(config)
            summary = build_lm_scores(ws, backend, store_path(config), top_n=top_n,
                                      history=history, shard=(part, parts), log=_log)
        except KeyboardInterrupt:
            _log("interrupted (every scored point is saved); run the same command again to "
                 "continue")
            raise typer.Exit(130) from None
        except LLMError as exc:
            _log(f"the LLM failed: {exc}; every point scored before it is saved, run the same "
                 f"command again to continue")
            raise typer.Exit(EXIT_BACKEND_FAILED) from None
        if bundle is not None:
            key = score_key(st.dataset.name, ws.base, backend.model_identity, top_n=top_n,
                            history=history)
            store = LMScoreStore(store_path(config))
            try:
                points = store.points(key, [u.user_id for u in ws.user_graphs])
            finally:
                store.close()
            _log(f"wrote {write_bundle(bundle, key, points)} ({len(points)} points)")
        payload = {**summary.__dict__}
        typer.echo(json.dumps(payload, indent=2) if as_json else _summary_text(summary))
