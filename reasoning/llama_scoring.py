"""Multiple-choice scoring on llama.cpp: the log-likelihood of each continuation after a prefix.

Decodes straight into the context (``Llama._ctx``, ``Llama._batch``: private
names the sampler patch's guard checks) so the prefix is read once and each
option costs only its own tokens.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from reasoning.backend import ContinuationScores
from reasoning.llama_prefix_cache import PrefixStateCache


def score_continuations(llama_cpp: Any, llm: Any, prefix: str, continuations: list[str],
                        heads: PrefixStateCache | None = None) -> ContinuationScores:
    """Total log-probability of each continuation after ``prefix`` (the caller holds ``llm``'s lock).

    The prefix is read once (only the part the context does not already hold:
    consecutive questions share their instructions, and a registered head in
    ``heads`` is restored instead of read); each continuation is then
    decoded on top of it with logits for every token (the first one in the
    prefix's batch), and the KV cache is cut back to the prefix before the next one.
    """
    started = time.perf_counter()
    prefix_tokens = llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
    if heads is not None:
        heads.reuse_head(llm, prefix_tokens)
    current = llm.input_ids[: llm.n_tokens].tolist()
    # Keep what the context already holds, but re-read at least the last prefix
    # token: its logits score each continuation's first token.
    shared = min(llm.longest_token_prefix(current, prefix_tokens), len(prefix_tokens) - 1)
    n_prefix = len(prefix_tokens)
    options = []
    for text in continuations:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if not tokens:
            raise ValueError(f"continuation {text[:40]!r} has no tokens")
        options.append(tokens)
    # The unread prefix and the first continuation go in one batch: each llama_decode call
    # streams every weight once, so a small model pays per call as much as for a few tokens.
    llm.n_tokens = shared
    unread = prefix_tokens[shared:]
    first = options[0][:-1] if options else []
    rows = _decode(llama_cpp, llm, unread + first, shared, first_row=len(unread) - 1)
    last = rows[0]
    llm.input_ids[:n_prefix] = prefix_tokens
    llm.n_tokens = n_prefix
    scores, lengths = [], []
    read = n_prefix - shared
    for n, tokens in enumerate(options):
        if n and len(tokens) > 1:
            rows = [last] + _decode(llama_cpp, llm, tokens[:-1], n_prefix, first_row=0)
        elif not n:
            rows = rows[: len(tokens)]
        else:
            rows = [last]
        if len(tokens) > 1:
            llm._ctx.kv_cache_seq_rm(-1, n_prefix, -1)
        scores.append(float(sum(row[token] for row, token in zip(rows, tokens))))
        lengths.append(len(tokens))
        read += len(tokens) - 1
    return ContinuationScores(logprobs=scores, lengths=lengths, tokens_read=read,
                              seconds=time.perf_counter() - started)


def _decode(llama_cpp: Any, llm: Any, tokens: list[int], n_past: int,
            first_row: int) -> list[np.ndarray]:
    """Decode ``tokens`` at positions ``n_past...``; the log-softmax rows of the logits of
    ``tokens[first_row:]``, one per token."""
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    rows: list[np.ndarray] = []
    n_vocab = llm.n_vocab()
    for start in range(0, len(tokens), llm.n_batch):
        chunk = tokens[start: start + llm.n_batch]
        llm._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=False)
        wanted = range(max(0, first_row - start), len(chunk))
        for i in wanted:
            llm._batch.batch.logits[i] = True
        llm._ctx.decode(llm._batch)
        for i in wanted:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                           shape=(n_vocab,)).astype(np.float64)
            peak = logits.max()
            rows.append(logits - (peak + math.log(float(np.exp(logits - peak).sum()))))
    return rows
