"""The one way files and folders are written so that a crash leaves the old version or the new one.

Every writer in the project goes through here (graph stores, caches, bench
JSON, runs, bundles, fetched data): the bytes go to a temporary sibling, are
fsynced, and replace the target with ``os.replace``; then the folder is fsynced
so the rename itself survives a power loss. It sits at the bottom layer so that
models/ and reasoning/ can both use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def publish_dir(staging: Path, target: Path) -> None:
    """Move a finished ``staging`` folder to ``target`` (absent or empty), durably.

    Every file and folder under ``staging`` is fsynced first, so ``target``
    never appears with a file that a crash could still truncate.
    """
    for root, _dirs, files in os.walk(staging):
        for name in files:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))
    os.replace(staging, target)
    fsync_dir(Path(target).parent)
