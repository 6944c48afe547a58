"""Live progress of one reasoning-graph build: streamed LLM text per stage, KB lookups, and
the model-load wait before a first build.

The builder reports generated text through ``on_token(stage, piece)``; KB
lookups are seen through :class:`ObservedKB`, a per-build wrapper around the
shared knowledge base (the builder made for one build shares the LLM, the
localizer and the KB with :func:`app.state.builder_load`'s; only the observer
is per build, so concurrent builds in two browser sessions never mix counts).
Nothing is drawn per token: :class:`LiveBuild` redraws at most every
``min_interval`` seconds, which keeps the websocket quiet.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

TAIL_CHARS = 600
STAGE_ORDER = ("chain", "verify", "diverge", "localize")
# KB kinds (reasoning.kb) -> the build stage that asks them.
KIND_STAGE = {"intent": "chain", "chain": "chain", "verify": "verify", "diverge": "diverge",
              "localize": "localize"}


class ObservedKB:
    """Delegates to a ``reasoning.kb.KnowledgeBase`` and reports each lookup.

    Args:
        inner: the shared knowledge base.
        on_lookup: called with ``(kind, hit)`` after each ``get``.
    """

    def __init__(self, inner: Any, on_lookup: Callable[[str, bool], None]) -> None:
        self._inner = inner
        self._on_lookup = on_lookup

    def get(self, kind: str, model: str, prompt_version: str, fields: dict[str, Any]) -> Any | None:
        value = self._inner.get(kind, model, prompt_version, fields)
        self._on_lookup(kind, value is not None)
        return value

    def __getattr__(self, name: str) -> Any:   # put, flush_counters, stats...
        return getattr(self._inner, name)


def per_build_builder(shared: Any, on_lookup: Callable[[str, bool], None]) -> Any:
    """A builder for one build: the shared one's backend, localizer and settings, and its KB
    wrapped in :class:`ObservedKB` (no KB: no wrapper)."""
    return shared.with_kb(ObservedKB(shared.kb, on_lookup) if shared.kb is not None else None)


def tail(text: str, chars: int = TAIL_CHARS) -> str:
    """The last ``chars`` characters, cut at a line start when one is near."""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    newline = cut.find("\n")
    return cut[newline + 1:] if 0 <= newline < chars // 4 else "…" + cut


@dataclass
class LiveBuild:
    """Accumulates a build's streamed text and KB lookups and redraws sparingly.

    Args:
        redraw: called with this object when there is something new to show.
        min_interval: seconds between redraws while tokens stream.
        clock: time source (tests pass a fake clock).
    """

    redraw: Callable[["LiveBuild"], None]
    min_interval: float = 0.25
    clock: Callable[[], float] = time.monotonic
    stage: str | None = None
    stages_seen: list[str] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)
    tokens: Counter = field(default_factory=Counter)
    kb_hits: Counter = field(default_factory=Counter)
    kb_misses: Counter = field(default_factory=Counter)
    started: float = 0.0
    finished: bool = False
    streaming: str | None = None    # the stage whose text came last
    _last_draw: float = -1e9

    def __post_init__(self) -> None:
        self.started = self.clock()

    def _enter(self, stage: str) -> bool:
        if stage == self.stage:
            return False
        self.stage = stage
        if stage not in self.stages_seen:
            self.stages_seen.append(stage)
        return True

    def on_token(self, stage: str, piece: str) -> None:
        """The builder's ``on_token`` callback."""
        changed = self._enter(stage)
        self.streaming = stage
        self.text[stage] = self.text.get(stage, "") + piece
        if piece:   # scoring stages announce themselves with an empty piece
            self.tokens[stage] += 1
        self._maybe_draw(force=changed)

    def on_lookup(self, kind: str, hit: bool) -> None:
        """The :class:`ObservedKB` callback (``kind`` is the KB kind, e.g. ``chain``)."""
        (self.kb_hits if hit else self.kb_misses)[kind] += 1
        stage = KIND_STAGE.get(kind)
        changed = self._enter(stage) if stage is not None else False
        self._maybe_draw(force=changed)

    def finish(self) -> None:
        """The build is over: no stage is running any more; draw the final state."""
        self.stage = None
        self.finished = True
        self.redraw(self)

    def _maybe_draw(self, force: bool) -> None:
        now = self.clock()
        if force or now - self._last_draw >= self.min_interval:
            self._last_draw = now
            self.redraw(self)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def live_rate(self) -> float | None:
        """Streamed pieces per second since the build started (about tokens/s)."""
        elapsed = self.clock() - self.started
        return self.total_tokens / elapsed if elapsed > 0 and self.total_tokens else None

    def kb_line(self) -> str:
        hits, misses = sum(self.kb_hits.values()), sum(self.kb_misses.values())
        if not hits and not misses:
            return "KB lookups: none yet"
        kinds = sorted(set(self.kb_hits) | set(self.kb_misses))
        per = ", ".join(f"{k} {self.kb_hits[k]}/{self.kb_hits[k] + self.kb_misses[k]}" for k in kinds)
        return f"KB lookups: {hits} hits, {misses} misses ({per} hit)"


def draw_progress(live: LiveBuild, boxes: dict[str, Any]) -> None:
    """Stage checklist, KB lookups and the tail of the current stage's streamed text."""
    lines = []
    for stage in STAGE_ORDER:
        # Words, not emoji: the machines that run the app may have no emoji font.
        if stage == live.stage:
            state = "running"
        elif stage in live.stages_seen:
            state = "done"
        else:
            state = "not needed" if live.finished else "waiting"
        count = live.tokens.get(stage, 0)
        lines.append(f"**{stage}**: {state}" + (f", {count} tokens streamed" if count else ""))
    boxes["stages"].markdown("  \n".join(lines))
    rate = live.live_rate()
    boxes["kb"].caption(live.kb_line() + (f" · streaming at about {rate:.1f} tokens/s"
                                          if rate else ""))
    if live.streaming:
        # st.code shows the model's text as plain text (it is untrusted).
        boxes["stream"].code(f"[{live.streaming}] " + tail(live.text[live.streaming]),
                             language=None, wrap_lines=True)


def wait_for_load(load: Any, status: Any) -> None:
    """Show the background load's progress until it is over (the first build after start)."""
    line = st.empty()
    while not load.wait(timeout=0.5):
        line.caption(f"Loading: {load.step} ({load.seconds:.0f} s so far). The graph is built "
                     "as soon as the model is ready.")
    line.empty()
    # expanded given again: an update without it lets the browser fold the box.
    status.update(label="Building the reasoning graph on the local LLM…", expanded=True)
