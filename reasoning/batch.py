"""Building and storing graphs for many users: what ``reasonrec build-graphs`` runs.

A session's graph is stored only when its build finished; a backend failure
(:class:`reasoning.backend.BackendFailure`: no server, a 5xx on every server,
a timeout, a crash) fails that session and stores nothing for it. When no
server of the pool answers any more (:class:`reasoning.backend.BackendUnavailable`,
raised after the pool's bounded outage wait) the batch stops: the sessions
under way fail, no new one starts, and the summary says how many graphs are
finished. A rerun skips them (the store's resume rule), so it completes the batch.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Callable

from models.data import Dataset
from reasoning.backend import BackendFailure, BackendUnavailable
from reasoning.builder import EmptySessionError, GraphBuilder, session_window
from reasoning.store import GraphStore

Progress = Callable[["BatchSummary"], None]


class BatchOutcome(str, Enum):
    """How a batch ended."""

    COMPLETE = "complete"          # every chosen user has a graph (or no window)
    SESSIONS_FAILED = "sessions_failed"   # the backend failed some sessions; the rest are stored
    STOPPED = "stopped"            # no server answered: the batch stopped early
    INTERRUPTED = "interrupted"    # Ctrl-C


@dataclass
class ServerThroughput:
    """One server's share of the batch."""

    url: str
    requests: int
    failures: int
    busy_seconds: float
    healthy: bool
    last_error: str


@dataclass
class BatchSummary:
    """What a batch did, in the units a user plans with.

    Attributes:
        users: users chosen.
        skipped: users whose graph was already stored with these settings.
        built: graphs built and stored by this run.
        failed: sessions whose build the backend failed (nothing stored for them).
        not_started: sessions left when the batch stopped.
        empty: users with no item before their target.
        wall_seconds: wall time of the building (after start-up and warm-up).
        llm_calls, kb_hits, kb_lookups: over the graphs built.
        sessions_per_minute: graphs built per minute of wall time.
        sessions_per_minute_per_server: the same divided by the servers in the pool (1 in-process).
        backend, model: what built them (as each graph's build log records).
        servers: per-server requests and failures (http backend only).
        failures: the first few failure messages, one per failed session.
    """

    users: int
    skipped: int
    built: int = 0
    failed: int = 0
    not_started: int = 0
    empty: int = 0
    wall_seconds: float = 0.0
    llm_calls: int = 0
    kb_hits: int = 0
    kb_lookups: int = 0
    backend: str = ""
    model: str = ""
    outcome: BatchOutcome = BatchOutcome.COMPLETE
    servers: list[ServerThroughput] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def finished(self) -> int:
        """Users with a stored graph now (before this run or by it)."""
        return self.skipped + self.built

    @property
    def remaining(self) -> int:
        return self.users - self.finished - self.empty

    @property
    def kb_hit_rate(self) -> float | None:
        return self.kb_hits / self.kb_lookups if self.kb_lookups else None

    @property
    def sessions_per_minute(self) -> float | None:
        return 60 * self.built / self.wall_seconds if self.wall_seconds > 0 else None

    @property
    def sessions_per_minute_per_server(self) -> float | None:
        rate = self.sessions_per_minute
        return rate / max(1, len(self.servers)) if rate is not None else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["outcome"] = self.outcome.value
        out["wall_seconds"] = round(self.wall_seconds, 3)
        rate, per_server, hit = (self.sessions_per_minute, self.sessions_per_minute_per_server,
                                 self.kb_hit_rate)
        out.update(finished=self.finished, remaining=self.remaining,
                   kb_hit_rate=None if hit is None else round(hit, 4),
                   sessions_per_minute=None if rate is None else round(rate, 3),
                   sessions_per_minute_per_server=None if per_server is None else round(per_server, 3))
        return out


def build_batch(builder: GraphBuilder, dataset: Dataset, store: GraphStore, users: list[str],
                concurrency: int = 1, progress: Progress | None = None) -> BatchSummary:
    """Build and store the graphs ``users`` lack; never stores a graph whose build failed.

    Args:
        concurrency: sessions built at once (the http backend's total in flight).
        progress: called after each session with the summary so far.

    Raises:
        KeyboardInterrupt: after recording it (``outcome`` is INTERRUPTED); the
            graphs stored so far stay.
    """
    settings = builder.settings
    todo = [u for u in users if not store.is_done(u, settings["key"])]
    info = builder.backend.info()
    summary = BatchSummary(users=len(users), skipped=len(users) - len(todo),
                           backend=info.kind.value, model=info.model_identity)
    lock = threading.Lock()
    stop = threading.Event()

    def one(user: str) -> None:
        if stop.is_set():
            with lock:
                summary.not_started += 1
            return
        try:
            session = session_window(dataset, user, builder.config.l_tru)
        except EmptySessionError:
            with lock:
                summary.empty += 1
            _report(progress, summary, lock)
            return
        try:
            graph = builder.build(session)
        except BackendUnavailable as exc:
            stop.set()
            _failed(summary, lock, user, exc)
            return
        except BackendFailure as exc:
            _failed(summary, lock, user, exc)
            return
        store.save(graph)
        log = graph.graph["build_log"]
        with lock:
            summary.built += 1
            summary.llm_calls += log.llm_calls
            summary.kb_hits += log.kb_hits
            summary.kb_lookups += log.kb_hits + log.kb_misses
        _report(progress, summary, lock)

    started = time.perf_counter()
    try:
        _for_each(one, todo, concurrency)
    except KeyboardInterrupt:
        summary.outcome = BatchOutcome.INTERRUPTED
        raise
    finally:
        summary.wall_seconds = time.perf_counter() - started
        summary.servers = _servers(builder.backend)
        if summary.outcome is not BatchOutcome.INTERRUPTED:
            summary.outcome = (BatchOutcome.STOPPED if stop.is_set() else
                               BatchOutcome.SESSIONS_FAILED if summary.failed else
                               BatchOutcome.COMPLETE)
    return summary


def _failed(summary: BatchSummary, lock: threading.Lock, user: str, exc: Exception) -> None:
    with lock:
        summary.failed += 1
        if len(summary.failures) < 5:
            summary.failures.append(f"user {user}: {exc}")


def _report(progress: Progress | None, summary: BatchSummary, lock: threading.Lock) -> None:
    if progress is not None:
        with lock:
            progress(summary)


def _servers(backend: Any) -> list[ServerThroughput]:
    stats = getattr(backend, "server_stats", None)
    if stats is None:
        return []
    return [ServerThroughput(url=s.url, requests=s.requests, failures=s.failures,
                             busy_seconds=s.busy_seconds, healthy=s.healthy,
                             last_error=s.last_error) for s in stats()]


def _for_each(work: Callable[[str], None], users: list[str], concurrency: int) -> None:
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
