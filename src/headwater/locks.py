"""Keep builds apart: one build at a time per project, and per output folder.

The webhook receiver's build, a dev server's and one started by hand may overlap; each takes
an exclusive `flock` on a lock file for the project and one for the output folder (both in
the project's cache, the second named by the folder's full path), and a second build waits for
the first (saying so) instead of sharing its stores and spare folder. The kernel drops a lock
when its process dies, so a killed build never leaves one behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def build_lock(cache_dir: Path, out_dir: Path) -> Iterator[None]:
    """Hold the project's build lock, then the output folder's, for the duration."""
    name = hashlib.blake2b(str(out_dir).encode(), digest_size=8).hexdigest()
    out_lock = cache_dir / "locks" / f"{out_dir.name}-{name}.lock"
    with hold(cache_dir / "locks" / "project.lock", "this project"), hold(out_lock, str(out_dir)):
        yield


@contextlib.contextmanager
def hold(path: Path, what: str) -> Iterator[None]:
    """An exclusive lock on path (created if need be); waits, with a log line, when taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            log.warning("another build of %s is running (process %s); waiting for it", what, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
