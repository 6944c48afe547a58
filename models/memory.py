"""Peak memory of this process, for benches that measure one model per process."""

from __future__ import annotations

import resource
import sys

import torch


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (a bench child measures only itself)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and bytes on macOS.
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def peak_gpu_mb() -> float | None:
    """Peak CUDA memory this process allocated through torch, in MB (``None`` without CUDA)."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / 2**20
