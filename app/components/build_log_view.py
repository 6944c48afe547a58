"""How a reasoning graph was built, in words: the LLM's offload, speed and stages (views only)."""

from __future__ import annotations

from typing import Any

from reasonrec.reasoning_api import BackendInfo, BackendKind


def offload_state(info: BackendInfo) -> str:
    """The GPU offload state of a backend, in words (from ``backend.info()`` or a build log)."""
    if info.http is not None:
        return f"remote server {info.http.url}".strip()
    if info.kind is BackendKind.GENRE_HEURISTIC:
        return "none, the graph was made without an LLM"
    if info.llama is None:
        return "not recorded"
    offload = info.llama.offload
    if offload.warning:
        return f"CPU (warning: {offload.warning})"
    # llama.cpp's own "of how many" (blocks + output layer), so a full offload reads N/N
    done = offload.offloaded
    layers = offload.offloadable or info.llama.n_layers
    if not offload.supported:
        return "CPU only: this llama.cpp build cannot offload to a GPU"
    if not done:
        return "CPU: no layer offloaded (GPU layers set to 0)"
    return f"GPU: {done}/{layers} layers offloaded"


def tokens_per_second(log: Any) -> float | None:
    """Generated tokens per second of LLM time (``None`` when nothing was generated)."""
    seconds = float(getattr(log, "llm_seconds", 0.0) or 0.0)
    tokens = int(getattr(log, "tokens_out", 0) or 0)
    return tokens / seconds if seconds > 0 and tokens > 0 else None


def stage_rows(log: Any) -> list[dict[str, Any]]:
    """One row per build stage: seconds, LLM calls, KB hits and misses, tokens."""
    return [{"stage": name, "seconds": round(s.seconds, 2), "LLM calls": s.llm_calls,
             "KB hits": s.kb_hits, "KB misses": s.kb_misses, "tokens in": s.tokens_in,
             "tokens out": s.tokens_out}
            for name, s in getattr(log, "stages", {}).items()]
