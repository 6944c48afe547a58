"""``python -m llama_cpp.server`` processes on free loopback ports, started and stopped by us.

The pool bench (``reasonrec bench pool``) and the pool tests share this. Each
server reads the GGUF itself, runs one CPU thread by default, and writes its
log to a file (a full pipe would block it).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reasonrec.bench_app import free_port


class ServerStartError(Exception):
    """A llama_cpp.server exited or did not listen in time; the message holds its log's tail."""


@dataclass
class LocalServer:
    """One running llama_cpp.server."""

    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answered(self) -> int:
        """Requests it answered with 200 (counted in its access log)."""
        return self.log.read_text(errors="replace").count('HTTP/1.1" 200')

    def kill(self) -> None:
        """SIGKILL (what a crash looks like to the pool); waits for the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def start_server(model: Path, log_dir: Path, port: int | None = None, threads: int = 1,
                 n_ctx: int = 2048, startup_s: float = 120.0) -> LocalServer:
    """Start one server and wait until its port accepts connections.

    Raises:
        ServerStartError: it exited, or did not listen within ``startup_s``.
    """
    port = port or free_port()
    log = log_dir / f"server-{port}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_threads", str(threads), "--n_ctx", str(n_ctx)],
            stdout=out, stderr=subprocess.STDOUT)
    server = LocalServer(port=port, log=log, process=process)
    deadline = time.monotonic() + startup_s
    while True:
        if process.poll() is not None:
            raise ServerStartError(f"llama_cpp.server on port {port} exited: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise ServerStartError(f"llama_cpp.server on port {port} did not listen within "
                                       f"{startup_s:g} s (log: {log})") from None
            time.sleep(0.3)


@contextlib.contextmanager
def local_servers(count: int, model: Path, log_dir: Path, threads: int = 1) -> Iterator[list[LocalServer]]:
    """``count`` servers, killed on exit (also when starting one of them failed)."""
    started: list[LocalServer] = []
    try:
        for _ in range(count):
            started.append(start_server(model, log_dir, threads=threads))
        yield started
    finally:
        for server in started:
            server.kill()
