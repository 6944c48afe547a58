"""A pool of OpenAI-compatible servers: least-busy choice, failover, re-probes with backoff.

:class:`reasoning.http_backend.HttpBackend` sends every request through
:meth:`ServerPool.run`:

* the request goes to the healthy server with the fewest requests in flight
  (ties: the one that has served fewest, then the order given), within the
  pool's total limit (``concurrency``) and the optional per-server limit;
* a server whose request fails with :class:`ServerDown` (connection refused or
  reset, a 5xx, a timeout) is marked down and the request is retried at once on
  another server; the down server is re-probed (a cheap ``GET /models``) after
  ``backoff_s``, then twice as long after each failed probe, up to ``backoff_max_s``;
* while no server is healthy, requests wait and probes go on; after
  ``outage_s`` without any server the waiting requests raise
  :class:`reasoning.backend.BackendUnavailable`. If no server has answered
  since the pool was made (a wrong URL, nothing started), that happens at once:
  a mistyped ``--url`` should fail in a second, not in minutes.

Nothing here knows HTTP: the caller passes ``call(url)`` and ``probe(url)``, so
the unit tests drive it with fakes and a fake clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from reasoning.backend import BackendFailure, BackendUnavailable, LLMTimeout

T = TypeVar("T")


class ServerDown(Exception):
    """Raised by a request function: this server failed, not the request; try another."""


class ServerTimeout(ServerDown):
    """The server did not answer in time (it is marked down like any other failure)."""


class PoolTimeout(BackendUnavailable, LLMTimeout):
    """No server answered, and each one's last failure was a timeout (stops a batch like any
    outage; callers that tell timeouts apart still can)."""


@dataclass(frozen=True)
class ServerStats:
    """One server's record (a snapshot).

    Attributes:
        url: the base URL.
        healthy: whether requests go to it now.
        in_flight: requests running on it now.
        requests: requests it answered.
        failures: times it was marked down.
        busy_seconds: total wall time of its answered requests.
        last_error: why it was last marked down ("" if never).
    """

    url: str
    healthy: bool
    in_flight: int
    requests: int
    failures: int
    busy_seconds: float
    last_error: str


class _Server:
    def __init__(self, url: str, order: int) -> None:
        self.url = url
        self.order = order
        self.healthy = True   # optimistic until a request or probe says otherwise
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.failed_probes = 0
        self.next_probe = 0.0
        self.probing = False
        self.busy_seconds = 0.0
        self.last_error = ""
        self.timed_out = False


class ServerPool:
    """Routes calls over servers (thread-safe).

    Args:
        urls: base URLs, at least one.
        probe: ``probe(url)`` returns when the server is usable again, raises otherwise.
        total_limit: requests in flight over the whole pool.
        per_server_limit: requests in flight per server (``None``: only the total).
        outage_s: how long requests wait while no server is healthy.
        backoff_s, backoff_max_s: first and longest delay between probes of a down server.
        max_failovers: server failures one request may meet before it fails
            (``None``: twice the servers, plus one): a request that breaks every
            server it reaches must not loop forever.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(self, urls: list[str], probe: Callable[[str], None], *, total_limit: int = 1,
                 per_server_limit: int | None = None, outage_s: float = 120.0,
                 backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 max_failovers: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("a server pool needs at least one URL")
        self._servers = [_Server(url, i) for i, url in enumerate(urls)]
        self._probe = probe
        self._total_limit = max(1, total_limit)
        self._per_server_limit = per_server_limit
        self._outage_s = outage_s
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._max_failovers = max_failovers if max_failovers is not None else 2 * len(urls) + 1
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._outage_since: float | None = None
        self._ever_reached = False

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self._servers]

    def stats(self) -> list[ServerStats]:
        with self._cond:
            return [ServerStats(url=s.url, healthy=s.healthy, in_flight=s.in_flight,
                                requests=s.requests, failures=s.failures,
                                busy_seconds=round(s.busy_seconds, 3), last_error=s.last_error)
                    for s in self._servers]

    def run(self, call: Callable[[str], T]) -> T:
        """``call(url)`` on the least busy healthy server, failing over on :class:`ServerDown`.

        Raises:
            BackendUnavailable: no server answered within ``outage_s`` (or none ever did).
            LLMTimeout: the request met ``max_failovers`` server failures, the last a timeout.
            BackendFailure: the request met ``max_failovers`` server failures.
            Whatever ``call`` raises other than :class:`ServerDown`.
        """
        errors: list[str] = []
        while True:
            server = self._acquire()
            started = self._clock()
            try:
                result = call(server.url)
            except ServerDown as exc:
                server.timed_out = isinstance(exc, ServerTimeout)
                self._release(server, started, error=str(exc) or type(exc).__name__)
                errors.append(f"{server.url}: {exc}")
                if len(errors) >= self._max_failovers:
                    kind = LLMTimeout if isinstance(exc, ServerTimeout) else BackendFailure
                    raise kind(f"a request failed on {len(errors)} tries; last: "
                               f"{errors[-1]}") from None
                continue
            except BaseException:
                self._release(server, started)
                raise
            self._release(server, started, answered=True)
            return result

    # ------------------------------------------------------------------ internals
    def _acquire(self) -> _Server:
        with self._cond:
            while True:
                now = self._clock()
                # A due probe comes first, so a server that is back rejoins even while
                # the others carry the load (a refused probe costs a millisecond).
                due = [s for s in self._servers
                       if not s.healthy and not s.probing and s.next_probe <= now]
                if due:
                    self._probe_locked(due[0])
                    continue
                if self._in_flight < self._total_limit:
                    free = [s for s in self._servers if s.healthy and
                            (self._per_server_limit is None or s.in_flight < self._per_server_limit)]
                    if free:
                        chosen = min(free, key=lambda s: (s.in_flight, s.requests, s.order))
                        chosen.in_flight += 1
                        self._in_flight += 1
                        return chosen
                if not any(s.healthy for s in self._servers):
                    self._check_outage(now)
                self._cond.wait(self._wait_seconds(now))

    def _check_outage(self, now: float) -> None:
        """Raise when the outage has lasted too long (or no server ever answered)."""
        if any(s.probing for s in self._servers):
            return   # a probe is under way: its answer decides
        if self._outage_since is None:
            self._outage_since = now
        if not self._ever_reached or now - self._outage_since >= self._outage_s:
            waited = f" for {now - self._outage_since:.0f} s" if self._ever_reached else ""
            kind = (PoolTimeout if all(s.timed_out for s in self._servers)
                    else BackendUnavailable)
            if len(self._servers) == 1:   # its own error names the URL and the cause
                raise kind(f"{self._servers[0].last_error or self._servers[0].url}"
                                         f"{' (no answer' + waited + ')' if waited else ''}")
            reasons = "; ".join(s.last_error or f"{s.url}: down" for s in self._servers)
            raise kind(f"no LLM server answered{waited}: {reasons}")

    def _wait_seconds(self, now: float) -> float:
        """Until the next probe is due (at most a second, so a clock change is noticed)."""
        pending = [s.next_probe - now for s in self._servers if not s.healthy and not s.probing]
        return max(0.01, min([1.0, *pending]))

    def _probe_locked(self, server: _Server) -> None:
        """Probe ``server`` without holding the lock; record the outcome."""
        server.probing = True
        self._cond.release()
        try:
            try:
                self._probe(server.url)
                error = None
            except Exception as exc:   # any failure of the probe means: still down
                error = str(exc) or type(exc).__name__
                server.timed_out = isinstance(exc, ServerTimeout)
        finally:
            self._cond.acquire()
            server.probing = False
        now = self._clock()
        if error is None:
            server.healthy = True
            server.failed_probes = 0
            self._outage_since = None
            self._ever_reached = True
        else:
            server.last_error = error
            server.failed_probes += 1
            server.next_probe = now + min(self._backoff_max_s,
                                          self._backoff_s * 2 ** server.failed_probes)
        self._cond.notify_all()

    def _release(self, server: _Server, started: float, *, answered: bool = False,
                 error: str | None = None) -> None:
        with self._cond:
            now = self._clock()
            server.in_flight -= 1
            self._in_flight -= 1
            if answered:
                server.requests += 1
                server.busy_seconds += now - started
                self._ever_reached = True
            if error is not None and server.healthy:
                server.healthy = False
                server.failures += 1
                server.failed_probes = 0
                server.last_error = error
                server.next_probe = now + self._backoff_s
                if not any(s.healthy for s in self._servers):
                    self._outage_since = now
            elif error is not None:
                server.last_error = error
            self._cond.notify_all()
