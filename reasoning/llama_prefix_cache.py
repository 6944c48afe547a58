"""Saved KV states of prompt prefixes (a stage's task and example turn), restored on demand.

Stage prompts share their task and example turn (about 200 tokens). Stages
interleave, so llama-cpp-python's own reuse (the previous prompt only) would
re-read them on most calls; a saved per-prefix state costs a few MB.

Scored prompts (multiple-choice log-likelihood) register their raw head too
(:meth:`PrefixStateCache.register`): before a scored prefix is read, the
longest registered head it starts with is restored when the context does not
already hold it. A restored state is the KV the tokens themselves would give,
so scores are unchanged.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any

MAX_PREFIX_STATES = 16      # saved KV states of stage-prompt prefixes (a few MB each)


class PrefixStateCache:
    """Least-recently-used KV states of token prefixes for one ``Llama`` (callers hold its lock)."""

    def __init__(self, llama_cpp: Any, capacity: int = MAX_PREFIX_STATES) -> None:
        self._llama_cpp = llama_cpp
        self._capacity = capacity
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._heads: set[tuple[int, ...]] = set()   # registered raw heads of scored prompts
        self.restores = 0

    def register(self, llm: Any, head: list[int]) -> None:
        """Keep ``head``'s state from now on: :meth:`reuse_head` restores it for prompts starting with it."""
        if not head:
            return
        key = tuple(head)
        self._heads.add(key)
        self.reuse(llm, head)
        if key not in self._states:   # the context already held it: keep it from there
            llm._ctx.kv_cache_seq_rm(-1, len(head), -1)
            llm.n_tokens = len(head)
            self._save(llm, key)

    def reuse_head(self, llm: Any, tokens: list[int]) -> None:
        """Put the longest registered head that ``tokens`` start with in the context, when the
        context holds less of ``tokens`` than that head."""
        best = max((h for h in self._heads if len(h) < len(tokens) and tuple(tokens[: len(h)]) == h),
                   key=len, default=None)
        if best is None:
            return
        current = llm.input_ids[: llm.n_tokens].tolist()
        if llm.longest_token_prefix(current, tokens) < len(best):
            self.reuse(llm, list(best))

    def reuse(self, llm: Any, prefix: list[int]) -> None:
        """Put the KV state of ``prefix`` in ``llm``'s context, restoring it or computing it once."""
        llama_cpp = self._llama_cpp
        current = llm.input_ids[: llm.n_tokens].tolist()
        shared = llm.longest_token_prefix(current, prefix)
        if shared >= len(prefix):
            return
        key = tuple(prefix)
        state = self._states.get(key)
        if state is not None:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, len(state), 0) == len(state):
                llm.input_ids[: len(prefix)] = prefix
                llm.n_tokens = len(prefix)
                self._states.move_to_end(key)
                self.restores += 1
                return
            llm.reset()   # could not restore: fall through and recompute
            shared = 0
        llm.n_tokens = shared
        llm.eval(prefix[shared:])
        self._save(llm, key)

    def _save(self, llm: Any, key: tuple[int, ...]) -> None:
        """Keep the context's KV state (which holds exactly ``key``) under ``key``."""
        llama_cpp = self._llama_cpp
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
        self._states[key] = bytes(buffer[:written])
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)   # a registered head evicted is read again when used
