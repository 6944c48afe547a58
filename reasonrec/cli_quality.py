"""``reasonrec bench quality`` (#17): is the reasoning credible, per LLM? Writes quality.json.

:func:`register` adds the command to the CLI's ``bench`` group; the CLI's helpers
are looked up when the command runs (``reasonrec.cli`` imports this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups

def _log(line: str) -> None:
    typer.echo(line, err=True)


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _text(result: dict[str, Any]) -> str:
    loc = result["localization"]
    lines = [f"localization hit@5 {_fmt(loc['dev']['hit_at_5'])} (MRR {_fmt(loc['dev']['mrr'])}, "
             f"{loc['dev']['cases']} texts); held back {_fmt(loc['held_back']['hit_at_5'])} "
             f"({loc['held_back']['cases']} texts)"]
    for m in result["models"]:
        lines += [f"{m['model']}: {m['sessions']} cold sessions, median "
                  f"{m['seconds_per_session_median']:.1f} s, {m['tokens_per_session']:.0f} tokens and "
                  f"{m['llm_calls_per_session']:.0f} LLM calls each",
                  f"  template reasons {_fmt(m['template_reason_share'], True)} of {m['reasons']}; "
                  f"candidates with co-watch support {_fmt(m['candidate_support_share'], True)} "
                  f"of {m['candidate_pairs']}",
                  f"  verification AUC {_fmt(m['verification_auc'])} over "
                  f"{m['verification_chains']} real and corrupted chains; pass rate "
                  f"{_fmt(m['verification_pass_rate'], True)}"]
    return "\n".join(lines)


def register(groups: CommandGroups) -> None:
    """Add ``quality`` to the ``bench`` group."""

    @groups.bench.command("quality")
    def bench_quality_command(
            ctx: typer.Context,
            users: int = typer.Option(20, "--users", min=1,
                                      help="Cold sessions built per model (users outside the "
                                           "fused models' sample)."),
            chains: int = typer.Option(200, "--chains", min=1,
                                       help="Real chains scored against corrupted twins."),
            models: str = typer.Option("smollm2-135m", "--models",
                                       help="Comma-separated: named models (smollm2-135m, "
                                            "gemma3-270m) or GGUF paths."),
            threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                                  help="CPU threads for the LLM."),
            out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """Verification AUC, template-reason share, localization hit@5 and MRR, divergent
        candidates' co-watch support, seconds and tokens per session, per model."""
        from reasonrec.bench_quality import bench_quality, default_excluded

        st = common.studio(ctx)
        config = st.reasoning_settings()
        if threads:
            config = config.model_copy(update={"n_threads": threads})
        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise ValueError("--models: name at least one model")
        fusion = st.config.fusion
        result = bench_quality(st.dataset, config, [(n, n) for n in names], users, chains,
                               default_excluded(st.split, fusion.users, fusion.seed),
                               list(st.split.train),
                               progress=lambda what, done, total: _log(f"{what}: {done}/{total}"))
        payload = result.to_json()
        path = out or st.config.bench_dir / "quality.json"
        common.write_json(path, payload)
        _log(f"wrote {path}")
        common.emit(payload, as_json, _text(payload))
