"""``reasonrec bench pool`` (#21): sessions per minute on 1 llama_cpp.server, then on N.

Both runs build the same users' graphs cold (KB off) into throwaway folders,
with as many sessions in flight as there are servers. The result also holds
the inputs of the GPU-pool arithmetic: tokens per session (measured here) and
one server's tokens per second (measured here, on this machine's CPU).

HTTP scoring is the bottleneck on llama_cpp.server: its echo of prompt
log-probabilities sorts the whole vocabulary in Python for every token, about
5-7 s per scored option on our 2 cores, so the default run is small.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from models.data import Dataset
from reasoning import verify
from reasoning.config import ReasoningConfig

# SmolLM2's tokenizer adds no BOS token; llama-cpp-python's echo pairs tokens with the wrong
# log-probability rows without one (see reasoning/http_backend.py).
SMOLLM2_SCORE_PREFIX = "<|im_start|>"
# Small stage settings: every scored option costs seconds over HTTP.
SMALL_STAGES = {"masks_per_chain": 1, "n_distractors": 1, "k_intents": 1, "r_items": 1}
BOTTLENECK = ("HTTP scoring is the bottleneck: llama_cpp.server sorts the vocabulary in Python for "
              "every echoed token (about 5-7 s per scored option on 2 CPU cores); vLLM or a GPU "
              "server returns prompt log-probabilities without that cost")


@dataclass
class PoolRun:
    """One batch over ``servers`` servers."""

    servers: int
    concurrency: int
    users: int
    built: int
    failed: int
    wall_seconds: float
    sessions_per_minute: float | None
    llm_calls: int
    tokens: int
    tokens_per_session: float | None
    tokens_per_second: float | None           # over the whole pool
    requests_per_server: list[int]


def _config(base: ReasoningConfig, model: Path, urls: list[str], window: int) -> ReasoningConfig:
    prefix = base.http_score_prefix
    if not prefix and "smollm2" in model.name.lower():
        prefix = SMOLLM2_SCORE_PREFIX
    values = {**base.model_dump(), **SMALL_STAGES, "l_tru": window, "backend": "http",
              "http_urls": urls, "concurrency": len(urls), "kb_enabled": False,
              "http_score_prefix": prefix}
    return ReasoningConfig(**values)


def _one_run(dataset: Dataset, config: ReasoningConfig, users: list[str], folder: Path) -> PoolRun:
    from reasoning.batch import build_batch
    from reasoning.builder import open_builder
    from reasoning.http_backend import HttpBackend
    from reasoning.store import GraphStore

    # Verification keeps option priors in memory for builds without a KB; cleared so the second
    # run scores them again, as the first did (else it does less work and looks faster).
    verify.clear_option_prior_cache()
    backend = HttpBackend(config)
    try:
        builder = open_builder(dataset, config, kb=False, backend=backend)
        builder.warm_up()
        store = GraphStore(folder)
        summary = build_batch(builder, dataset, store, users, concurrency=config.concurrency)
    finally:
        backend.close()
    tokens = 0
    for user in store.users():
        graph = store.load(user)
        if graph is not None:
            log = graph.graph["build_log"]
            tokens += log.tokens_in + log.tokens_out
    wall = summary.wall_seconds
    return PoolRun(servers=len(config.server_urls), concurrency=config.concurrency, users=len(users),
                   built=summary.built, failed=summary.failed, wall_seconds=round(wall, 2),
                   sessions_per_minute=(None if summary.sessions_per_minute is None
                                        else round(summary.sessions_per_minute, 3)),
                   llm_calls=summary.llm_calls, tokens=tokens,
                   tokens_per_session=round(tokens / summary.built, 1) if summary.built else None,
                   tokens_per_second=round(tokens / wall, 2) if wall > 0 and tokens else None,
                   requests_per_server=[s.requests for s in summary.servers])


def bench_pool(dataset: Dataset, base: ReasoningConfig, servers: int, users: int, window: int = 1,
               threads: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build ``users`` graphs on 1 server, then on ``servers`` servers; sessions per minute of each.

    Args:
        base: the studio's reasoning settings (model, data dir for cached item vectors).
        window: session window (``l_tru``); the stages run with one mask, one
            distractor, one next intent and one item per intent.
        threads: CPU threads per server.
    """
    from reasoning.llama_backend import resolve_model_path
    from reasonrec.local_servers import local_servers

    model = resolve_model_path(base)
    chosen = dataset.user_ids[:users]
    runs: list[PoolRun] = []
    with tempfile.TemporaryDirectory(prefix="reasonrec-pool-") as tmp:
        for count in sorted({1, servers}):
            log(f"starting {count} llama_cpp.server process(es) ...")
            with local_servers(count, model, Path(tmp) / f"logs-{count}", threads=threads) as started:
                config = _config(base, model, [s.url for s in started], window)
                log(f"building {len(chosen)} graph(s) on {count} server(s) ...")
                runs.append(_one_run(dataset, config, chosen, Path(tmp) / f"graphs-{count}"))
                log(f"  {runs[-1].sessions_per_minute} sessions/min, {runs[-1].tokens_per_session} "
                    "tokens per session")
    one, pool = runs[0], runs[-1]
    speedup = (pool.sessions_per_minute / one.sessions_per_minute
               if pool.sessions_per_minute and one.sessions_per_minute else None)
    per_session = pool.tokens_per_session or one.tokens_per_session
    server_rate = one.tokens_per_second
    return {
        "model": model.name, "users": len(chosen), "window": window, "stages": SMALL_STAGES,
        "threads_per_server": threads, "kb": "off (every session cold)",
        "http_score_prefix": _config(base, model, ["http://127.0.0.1:1/v1"], window).http_score_prefix,
        "runs": [asdict(r) for r in runs],
        "speedup": None if speedup is None else round(speedup, 3),
        "bottleneck": BOTTLENECK,
        "gpu_pool_arithmetic": {
            "formula": "hours = tokens_per_session x users / (servers x server_tokens_per_second) "
                       "/ 3600",
            "tokens_per_session": per_session,
            "tokens_per_session_source": "measured here, at this bench's small settings",
            "server_tokens_per_second": server_rate,
            "server_tokens_per_second_source": "measured here: one llama_cpp.server on this "
                                               f"machine's CPU, {threads} thread(s)",
        },
    }


def pool_text(result: dict[str, Any]) -> str:
    """The result in lines for a terminal."""
    lines = [f"{result['model']}, {result['users']} users, window {result['window']}, KB off"]
    for run in result["runs"]:
        lines.append(f"{run['servers']} server(s): {run['built']} built, {run['failed']} failed in "
                     f"{run['wall_seconds']:.1f} s = {run['sessions_per_minute']} sessions/min; "
                     f"{run['tokens_per_session']} tokens per session, "
                     f"{run['tokens_per_second']} tokens/s")
    lines.append(f"speed-up: {result['speedup']}")
    lines.append(result["bottleneck"])
    gpu = result["gpu_pool_arithmetic"]
    lines.append(f"GPU pool: {gpu['formula']}; tokens_per_session {gpu['tokens_per_session']} "
                 f"(measured), server_tokens_per_second {gpu['server_tokens_per_second']} "
                 "(measured here; put your server's figure in its place)")
    return "\n".join(lines)
