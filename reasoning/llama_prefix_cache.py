"""Saved KV states of prompt prefixes (a stage's task and example turn), restored on demand.

Stage prompts share their task and example turn (about 200 tokens). Stages
interleave, so llama-cpp-python's own reuse (the previous prompt only) would
re-read them on most calls; a saved per-prefix state costs a few MB.
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
        self.restores = 0

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
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
        self._states[key] = bytes(buffer[:written])
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
