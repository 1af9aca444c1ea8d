"""Run one function over shards of a list in forked worker processes."""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def run_sharded(
    work: Callable[[Sequence[T]], list[R]], items: Sequence[T], *, workers: int | None = None
) -> list[R]:
    """work(shard) for interleaved shards of items, results in the order of items.

    Forked children inherit everything in memory (the planned site, compiled templates), so
    nothing is sent to them; each sends back its results. workers=None means one per CPU; 0 or
    1, or a process with other threads running (fork would copy their locks), runs in-process.
    """
    count = (os.cpu_count() or 1) if workers is None else workers
    count = min(count, len(items))
    if count <= 1 or not hasattr(os, "fork") or threading.active_count() > 1:
        return work(items)
    shards = [items[i::count] for i in range(count)]
    log.debug("%d items in %d processes (%s)", len(items), count, getattr(work, "__name__", "work"))
    children = [_spawn(work, shard) for shard in shards[1:]]
    try:
        first = work(shards[0])
    finally:
        outcomes = [_collect(pid, fd) for pid, fd in children]
    results = [first] + [_unwrap(outcome) for outcome in outcomes]
    merged: list[R] = []
    for i in range(len(items)):
        merged.append(results[i % count][i // count])
    return merged


def _spawn(work: Callable[[Sequence[T]], list[R]], shard: Sequence[T]) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: do the work, send the outcome, leave without cleanup handlers
        os.close(read)
        status = 0
        try:
            payload: Any = ("ok", work(shard))
        except BaseException as exc:
            payload, status = ("error", exc), 1
        try:
            data = pickle.dumps(payload)
        except Exception as exc:
            data, status = pickle.dumps(("error", RuntimeError(repr(exc)))), 1
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
        os._exit(status)
    os.close(write)
    return pid, read


def _collect(pid: int, fd: int) -> tuple[str, Any]:
    with os.fdopen(fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return "error", RuntimeError(f"a render worker died (wait status {status})")
    outcome: tuple[str, Any] = pickle.loads(data)
    return outcome


def _unwrap(outcome: tuple[str, Any]) -> list[Any]:
    kind, value = outcome
    if kind == "error":
        raise value
    return list(value)
