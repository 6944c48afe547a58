"""Loading the reasoning builder (the LLM, its prompt cache, item vectors, text encoder) off
the page's thread.

Loading takes from seconds to over a minute on a CPU (most of it the text encoder and, on an
empty data directory, the catalogue's item vectors). The app starts one load for the
config file's settings when it starts (``app.state.preload_reasoning``), so the first build
usually finds everything ready; a build that comes earlier waits for the load and shows its
progress (:class:`BuilderLoad` says which part runs and since when).

A load runs in a daemon thread; its result or error is kept for every browser session that
asks for the same settings. A failed load is not kept: the next build starts a fresh one
(the user may have started the server or installed the model since).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OpenBuilder = Callable[[], Any]


@dataclass
class BuilderLoad:
    """One load of a builder, shared by every session with the same settings.

    Attributes:
        step: what the load does now, in words ("loading the LLM", ...).
        builder: the ready builder (None until done, or after an error).
        error: why the load failed (None while running or after success).
        started / finished: ``time.monotonic()`` stamps (``finished`` None while running).
    """

    step: str = "starting"
    builder: Any = None
    error: BaseException | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def seconds(self) -> float:
        """Load time so far, or in all once done."""
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Until the load is over (or ``timeout`` seconds); True when it is over."""
        return self._done.wait(timeout)

    def run(self, open_builder: OpenBuilder) -> None:
        """Open the builder and do its one-time work (the thread's body; never raises)."""
        try:
            self.step = "loading the LLM"
            builder = open_builder()
            # The HTTP backend asks the server which model it serves here: a server that is
            # down fails the load, with a message, instead of the first build.
            self.step = "checking the model"
            builder.settings  # noqa: B018  (computes and caches the model identity)
            self.step = "reading the prompts and loading the item vectors and the text encoder"
            builder.warm_up(encoder=True)
            self.builder = builder
        except Exception as exc:  # kept for the page, which explains it in words
            self.error = exc
        finally:
            if self.builder is None and self.error is None:   # interrupted (interpreter exit)
                self.error = RuntimeError("the load was interrupted")
            self.finished = time.monotonic()
            self.step = "done" if self.error is None else "failed"
            self._done.set()


class BuilderLoads:
    """The loads of this process, one per settings key (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads: dict[str, BuilderLoad] = {}

    def get(self, key: str, open_builder: OpenBuilder) -> BuilderLoad:
        """The load for ``key``: the running or finished one, or a new one started now.

        A failed load is replaced by a new one, so a fix outside the app (a server started,
        a model installed) takes effect at the next build.
        """
        with self._lock:
            load = self._loads.get(key)
            if load is None or (load.done and load.error is not None):
                load = BuilderLoad()
                self._loads[key] = load
                threading.Thread(target=load.run, args=(open_builder,), daemon=True,
                                 name=f"reasonrec-builder-load-{len(self._loads)}").start()
            return load

    def peek(self, key: str) -> BuilderLoad | None:
        """The load for ``key`` if one was started (nothing is started)."""
        with self._lock:
            return self._loads.get(key)
