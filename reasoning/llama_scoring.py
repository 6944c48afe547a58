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
    decoded on top of it with logits for every token, and the KV cache is cut
    back to the prefix before the next one.
    """
    started = time.perf_counter()
    prefix_tokens = llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
    if heads is not None:
        heads.reuse_head(llm, prefix_tokens)
    current = llm.input_ids[: llm.n_tokens].tolist()
    # Keep what the context already holds, but re-read at least the last prefix
    # token: its logits score each continuation's first token.
    shared = min(llm.longest_token_prefix(current, prefix_tokens), len(prefix_tokens) - 1)
    llm.n_tokens = shared
    last = _decode(llama_cpp, llm, prefix_tokens[shared:], shared, all_logits=False)[-1]
    n_prefix = len(prefix_tokens)
    llm.input_ids[:n_prefix] = prefix_tokens
    llm.n_tokens = n_prefix
    scores, lengths = [], []
    read = n_prefix - shared
    for text in continuations:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if not tokens:
            raise ValueError(f"continuation {text[:40]!r} has no tokens")
        rows = [last]
        if len(tokens) > 1:
            rows += _decode(llama_cpp, llm, tokens[:-1], n_prefix, all_logits=True)
            llm._ctx.kv_cache_seq_rm(-1, n_prefix, -1)
        scores.append(float(sum(row[token] for row, token in zip(rows, tokens))))
        lengths.append(len(tokens))
        read += len(tokens) - 1
    return ContinuationScores(logprobs=scores, lengths=lengths, tokens_read=read,
                              seconds=time.perf_counter() - started)


def _decode(llama_cpp: Any, llm: Any, tokens: list[int], n_past: int,
            all_logits: bool) -> list[np.ndarray]:
    """Decode ``tokens`` at positions ``n_past...``; log-softmax rows of the logits asked for.

    With ``all_logits`` one row per token, else the last token's row only.
    """
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    rows: list[np.ndarray] = []
    n_vocab = llm.n_vocab()
    for start in range(0, len(tokens), llm.n_batch):
        chunk = tokens[start: start + llm.n_batch]
        llm._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=all_logits)
        llm._ctx.decode(llm._batch)
        wanted = range(len(chunk)) if all_logits else [len(chunk) - 1]
        for i in wanted:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                           shape=(n_vocab,)).astype(np.float64)
            peak = logits.max()
            rows.append(logits - (peak + math.log(float(np.exp(logits - peak).sum()))))
    return rows if all_logits else rows[-1:]
