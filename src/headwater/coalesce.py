"""The rebuild queue: coalesce bursts of changes into one build at a time, on a worker thread.

Shared by the dev server and the webhook receiver. A build starts after a quiet period since
the last change, or a maximum delay since the first queued change, whichever comes first.
Everything submitted while a build runs is folded into exactly one follow-up build.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

log = logging.getLogger(__name__)

ChangeT = TypeVar("ChangeT", bound=Hashable)
ResultT = TypeVar("ResultT")

State = Literal["idle", "waiting", "building", "stopped"]


@dataclass(frozen=True)
class BuildRecord(Generic[ChangeT, ResultT]):
    """One finished build: what it folded in, when it ran, and what it returned or raised."""

    number: int
    changes: frozenset[ChangeT]
    started: dt.datetime
    finished: dt.datetime
    duration: float
    """Seconds, by the queue's monotonic clock."""
    result: ResultT | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the build's own result stays with its caller)."""
        return {
            "number": self.number,
            "changes": len(self.changes),
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "duration": round(self.duration, 3),
            "result": "succeeded" if self.ok else "failed",
            "error": None if self.error is None else str(self.error) or type(self.error).__name__,
        }


@dataclass(frozen=True)
class QueueStatus(Generic[ChangeT, ResultT]):
    """The queue at one moment, read consistently under its lock."""

    state: State
    queued: int
    """Distinct changes waiting for the next build."""
    builds: int
    """Builds finished so far, failed ones included."""
    stopping: bool
    last: BuildRecord[ChangeT, ResultT] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "queued": self.queued,
            "builds": self.builds,
            "last_build": None if self.last is None else self.last.as_dict(),
        }


Subscriber = Callable[[BuildRecord[ChangeT, ResultT]], None]


class RebuildQueue(Generic[ChangeT, ResultT]):
    """Runs `build(changes)` on one worker thread, once per burst of submitted changes.

    `submit` only takes a lock briefly, so threads and asyncio code alike may call it. A build
    that raises is recorded in `status().last` and logged; the worker carries on. `clock` is
    the monotonic clock the delays are measured with; tests may pass a controllable one.
    """

    def __init__(
        self,
        build: Callable[[frozenset[ChangeT]], ResultT],
        *,
        quiet: float = 5.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "rebuild-queue",
    ) -> None:
        if quiet < 0 or max_delay < 0:
            raise ValueError("quiet and max_delay must not be negative")
        self._build = build
        self._quiet = quiet
        self._max_delay = max_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: set[ChangeT] = set()
        self._first_change = 0.0
        self._last_change = 0.0
        self._building = False
        self._stopping = False
        self._builds = 0
        self._last: BuildRecord[ChangeT, ResultT] | None = None
        self._subscribers: list[Subscriber[ChangeT, ResultT]] = []
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def __enter__(self) -> RebuildQueue[ChangeT, ResultT]:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the worker thread; changes submitted before this wait for it."""
        self._thread.start()

    def submit(self, change: ChangeT) -> bool:
        """Queue a change; False (and nothing queued) once the queue is stopping."""
        with self._cond:
            if self._stopping:
                log.debug("queue stopping; ignoring %r", change)
                return False
            now = self._clock()
            if not self._pending:
                self._first_change = now
            self._last_change = now
            self._pending.add(change)
            self._cond.notify_all()
            return True

    def subscribe(self, callback: Subscriber[ChangeT, ResultT]) -> Callable[[], None]:
        """Call `callback(record)` on the worker thread after every build; returns an
        unsubscribe function. A callback that raises is logged and kept."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def status(self) -> QueueStatus[ChangeT, ResultT]:
        with self._cond:
            return self._status()

    def wait_for(
        self, predicate: Callable[[QueueStatus[ChangeT, ResultT]], bool], timeout: float | None
    ) -> bool:
        """Block until predicate(status) holds; False if timeout (seconds) passes first."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._status()), timeout)

    def wait_idle(self, timeout: float | None) -> bool:
        """Block until nothing is queued or building (or the queue has stopped)."""
        return self.wait_for(lambda status: status.state in ("idle", "stopped"), timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Accept no more changes, drop queued ones, let a running build finish.

        Returns False if the worker is still busy after `timeout` seconds.
        """
        with self._cond:
            self._stopping = True
            if self._pending:
                log.info("stopping: %d queued change(s) will not be built", len(self._pending))
                self._pending.clear()
            self._cond.notify_all()
        if not self._thread.is_alive() or self._thread is threading.current_thread():
            return not self._thread.is_alive()  # a subscriber cannot wait for its own thread
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _status(self) -> QueueStatus[ChangeT, ResultT]:
        state: State
        if self._building:
            state = "building"
        elif self._stopping:
            state = "stopped"
        elif self._pending:
            state = "waiting"
        else:
            state = "idle"
        return QueueStatus(
            state=state,
            queued=len(self._pending),
            builds=self._builds,
            stopping=self._stopping,
            last=self._last,
        )

    def _work(self) -> None:
        while True:
            changes = self._next_batch()
            if changes is None:
                return
            record = self._run(changes)
            with self._cond:
                self._building = False
                self._builds += 1
                self._last = record
                subscribers = list(self._subscribers)
                self._cond.notify_all()
            for callback in subscribers:
                try:
                    callback(record)
                except Exception:
                    log.exception("a build subscriber failed")

    def _next_batch(self) -> frozenset[ChangeT] | None:
        """Wait until a batch is due and take it; None once stopping."""
        with self._cond:
            while not self._stopping:
                if not self._pending:
                    self._cond.wait()
                    continue
                due = min(self._last_change + self._quiet, self._first_change + self._max_delay)
                remaining = due - self._clock()
                if remaining <= 0:
                    changes = frozenset(self._pending)
                    self._pending.clear()
                    self._building = True
                    self._cond.notify_all()
                    return changes
                self._cond.wait(remaining)
            return None

    def _run(self, changes: frozenset[ChangeT]) -> BuildRecord[ChangeT, ResultT]:
        number = self._builds + 1
        log.info("build %d: %d change(s)", number, len(changes))
        started_wall = dt.datetime.now(dt.UTC)
        started = self._clock()
        result: ResultT | None = None
        error: Exception | None = None
        try:
            result = self._build(changes)
        except Exception as exc:
            error = exc
        duration = self._clock() - started
        if error is not None:
            log.info("build %d failed after %.2f s: %s", number, duration, error)
        return BuildRecord(
            number=number,
            changes=changes,
            started=started_wall,
            finished=dt.datetime.now(dt.UTC),
            duration=duration,
            result=result,
            error=error,
        )
