"""llama.cpp's load log: captured while a model loads, and read for GPU offload counts.

llama-cpp-python with ``verbose=False`` drops the log, yet it is the only place
that says how many layers landed on the GPU, so the load installs a capturing
log callback for its duration.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_OFFLOAD_LINE = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_ASSIGNED_LINE = re.compile(r"layer +\d+ assigned to device (\S+?),")
_load_lock = threading.Lock()   # the llama.cpp log callback is process-global


def offload_counts_from_log(log: str) -> tuple[int, int | None]:
    """``(offloaded, offloadable)`` layers, as llama.cpp's load log states them.

    GPU builds print ``offloaded N/M layers to GPU``; every build prints one
    ``layer K assigned to device DEV`` line per layer, which we count when the
    summary line is missing. llama.cpp counts the output layer too, so M is the
    model's block count + 1 (a 30-block model offloads "31/31"); ``None`` when
    the log says neither.
    """
    match = _OFFLOAD_LINE.search(log)
    if match:
        return int(match.group(1)), int(match.group(2))
    devices = _ASSIGNED_LINE.findall(log)
    offloaded = sum(1 for device in devices if not device.upper().startswith("CPU"))
    return offloaded, len(devices) or None


@contextmanager
def captured_load_log(llama_cpp: Any) -> Iterator[list[str]]:
    """Collect llama.cpp's log lines into the yielded list, then restore its own logger.

    One load at a time: the callback is process-global.
    """
    from llama_cpp import _logger

    captured: list[str] = []

    @llama_cpp.llama_log_callback
    def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        captured.append(text.decode("utf-8", "replace"))

    with _load_lock:
        llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))
        try:
            yield captured
        finally:
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
