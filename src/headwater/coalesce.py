"""The rebuild queue: coalesce bursts of changes into one build at a time, on a worker thread.

Shared by the dev server and the webhook receiver. A build starts after a quiet period since
the last change, or a maximum delay since the first queued change, whichever comes first;
changes restored after a restart are due at once. Everything submitted while a build runs is
folded into exactly one follow-up build.

A failed build is one of two kinds, as `classify` decides:
- transient (the network, a busy server, a killed build): its changes go back into the queue,
  with whatever arrived meanwhile, due no sooner than an exponential backoff with jitter (or
  the wait the other side asked for), and so on until a build succeeds;
- permanent (the content or the configuration is wrong): its changes are held, not retried,
  until a new change arrives and builds them together with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

log = logging.getLogger(__name__)

ChangeT = TypeVar("ChangeT", bound=Hashable)
ResultT = TypeVar("ResultT")

State = Literal["idle", "waiting", "retrying", "held", "building", "stopped"]


@dataclass(frozen=True)
class Failure:
    """What to do about a failed build: retry it later (transient), or hold it."""

    transient: bool
    retry_after: float | None = None
    """Seconds the other side asked us to wait (HTTP Retry-After), if it said."""


PERMANENT = Failure(transient=False)


def never_transient(error: Exception) -> Failure:
    """The default: a failed build waits for the next change (the dev server's case)."""
    return PERMANENT


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with equal jitter: attempt n waits between half and all of
    min(cap, base·2ⁿ⁻¹) seconds. Never less than half a step, so a struggling server is not
    hit again at once, yet spread out, so a fleet of retries does not arrive together."""

    base: float = 10.0
    cap: float = 600.0
    longest_retry_after: float = 3600.0
    """A Retry-After is honoured up to this many seconds, so a wrong one cannot park changes
    for days."""

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("the backoff needs 0 < base <= cap")

    def delay(self, attempt: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds before retry number `attempt` (1 = after the first failure); jitter in
        [0, 1)."""
        step = min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 64))
        delay = step / 2 + jitter * step / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.longest_retry_after))
        return delay


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
    attempt: int = 1
    """Which attempt at (some of) these changes this was: 1 unless earlier ones failed."""
    retry_in: float | None = None
    """For a transient failure: seconds until the retry."""
    held: bool = False
    """For a permanent failure: the changes wait for the next change."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the build's own result stays with its caller)."""
        return {
            "number": self.number,
            "changes": len(self.changes),
            "attempt": self.attempt,
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
    """Distinct changes not yet built: waiting, due for a retry, or held."""
    builds: int
    """Builds finished so far, failed ones included."""
    stopping: bool
    last: BuildRecord[ChangeT, ResultT] | None
    held: int = 0
    """Of `queued`, the changes held after a permanent failure."""
    attempts: int = 0
    """Failed builds of the queued changes since the last success."""
    retry_in: float | None = None
    """Seconds until a transient failure's retry is due, while one is waiting."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "queued": self.queued,
            "held": self.held,
            "builds": self.builds,
            "attempts": self.attempts,
            "retry_in": None if self.retry_in is None else round(self.retry_in, 3),
            "last_build": None if self.last is None else self.last.as_dict(),
        }


Subscriber = Callable[[BuildRecord[ChangeT, ResultT]], None]


class RebuildQueue(Generic[ChangeT, ResultT]):
    """Runs `build(changes)` on one worker thread, once per burst of submitted changes.

    `submit` only takes a lock briefly, so threads and asyncio code alike may call it. A build
    that raises is recorded in `status().last`, handed to the subscribers, and retried or held
    as `classify(error)` says; the worker carries on. `clock` is the monotonic clock the delays
    are measured with and `jitter` the random source of the backoff; tests may pass their own.
    """

    def __init__(
        self,
        build: Callable[[frozenset[ChangeT]], ResultT],
        *,
        quiet: float = 5.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "rebuild-queue",
        classify: Callable[[Exception], Failure] = never_transient,
        backoff: Backoff | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if quiet < 0 or max_delay < 0:
            raise ValueError("quiet and max_delay must not be negative")
        self._build = build
        self._quiet = quiet
        self._max_delay = max_delay
        self._clock = clock
        self._classify = classify
        self._backoff = backoff or Backoff()
        self._jitter = jitter
        self._cond = threading.Condition()
        self._pending: set[ChangeT] = set()
        self._held: set[ChangeT] = set()
        self._first_change = 0.0
        self._last_change = 0.0
        self._due_now = False
        self._retry_at: float | None = None
        self._attempts = 0
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
        """Queue a change; False (and nothing queued) once the queue is stopping.

        Held changes join it: a new change is the next chance to build them.
        """
        return self._add((change,), due_now=False)

    def restore(self, changes: Iterable[ChangeT]) -> bool:
        """Queue changes that already waited (journaled before a restart): due at once,
        without a fresh quiet period. False once the queue is stopping."""
        return self._add(tuple(changes), due_now=True)

    def _add(self, changes: tuple[ChangeT, ...], *, due_now: bool) -> bool:
        with self._cond:
            if self._stopping:
                log.debug("queue stopping; ignoring %d change(s)", len(changes))
                return False
            if not changes:
                return True
            now = self._clock()
            if not self._pending:
                self._first_change = now
            self._last_change = now
            self._pending.update(changes)
            if self._held:
                self._pending |= self._held
                self._held.clear()
            self._due_now = self._due_now or due_now
            self._cond.notify_all()
            return True

    def wake(self) -> None:
        """Look again at when the next batch is due: for a clock that moved by other means
        than time passing (a test's)."""
        with self._cond:
            self._cond.notify_all()

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
        """Block until nothing is due or building: idle, held, or stopped."""
        return self.wait_for(lambda status: status.state in ("idle", "held", "stopped"), timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Accept no more changes and start no more builds; let a running build finish.

        What is queued stays queued (see `status()`): its owner decides what becomes of it.
        Returns False if the worker is still busy after `timeout` seconds.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if not self._thread.is_alive() or self._thread is threading.current_thread():
            return not self._thread.is_alive()  # a subscriber cannot wait for its own thread
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _status(self) -> QueueStatus[ChangeT, ResultT]:
        now = self._clock()
        retry_in = None
        if self._pending and self._retry_at is not None and not self._building:
            retry_in = max(0.0, self._retry_at - now)
        state: State
        if self._building:
            state = "building"
        elif self._stopping:
            state = "stopped"
        elif self._pending:
            state = "retrying" if retry_in else "waiting"
        elif self._held:
            state = "held"
        else:
            state = "idle"
        return QueueStatus(
            state=state,
            queued=len(self._pending | self._held),
            builds=self._builds,
            stopping=self._stopping,
            last=self._last,
            held=len(self._held),
            attempts=self._attempts,
            retry_in=retry_in,
        )

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            record = self._run(batch, self._attempts + 1)
            with self._cond:
                record = self._settle(record)
                subscribers = list(self._subscribers)
                self._cond.notify_all()
            for callback in subscribers:
                try:
                    callback(record)
                except Exception:
                    log.exception("a build subscriber failed")

    def _due(self) -> float:
        """When the pending changes are due, by the queue's clock."""
        if self._due_now:
            due = float("-inf")
        else:
            due = min(self._last_change + self._quiet, self._first_change + self._max_delay)
        return due if self._retry_at is None else max(due, self._retry_at)

    def _next_batch(self) -> frozenset[ChangeT] | None:
        """Wait until a batch is due and take it; None once stopping."""
        with self._cond:
            while not self._stopping:
                if not self._pending:
                    self._cond.wait()
                    continue
                remaining = self._due() - self._clock()
                if remaining <= 0:
                    changes = frozenset(self._pending)
                    self._pending.clear()
                    self._due_now = False
                    self._retry_at = None
                    self._building = True
                    self._cond.notify_all()
                    return changes
                self._cond.wait(remaining)
            return None

    def _run(self, changes: frozenset[ChangeT], attempt: int) -> BuildRecord[ChangeT, ResultT]:
        number = self._builds + 1
        again = f", attempt {attempt}" if attempt > 1 else ""
        log.info("build %d: %d change(s)%s", number, len(changes), again)
        started_wall = dt.datetime.now(dt.UTC)
        started = self._clock()
        result: ResultT | None = None
        error: Exception | None = None
        try:
            result = self._build(changes)
        except Exception as exc:
            error = exc
        # The subscribers report the outcome, once: the queue itself does not log it.
        return BuildRecord(
            number=number,
            changes=changes,
            started=started_wall,
            finished=dt.datetime.now(dt.UTC),
            duration=self._clock() - started,
            result=result,
            error=error,
            attempt=attempt,
        )

    def _settle(self, record: BuildRecord[ChangeT, ResultT]) -> BuildRecord[ChangeT, ResultT]:
        """Under the lock: account for a finished build, and retry or hold a failed one."""
        self._building = False
        self._builds += 1
        if record.error is None:
            self._attempts = 0
        else:
            self._attempts += 1
            failure = self._failure(record.error)
            now = self._clock()
            if failure.transient:
                delay = self._backoff.delay(self._attempts, self._jitter(), failure.retry_after)
                if not self._pending:
                    self._first_change = self._last_change = now
                self._pending |= record.changes
                self._retry_at = now + delay
                record = dataclasses.replace(record, retry_in=delay)
            elif self._pending:
                # Changes arrived during the build: they are the next chance, so build with them.
                self._pending |= record.changes
            else:
                self._held |= record.changes
                record = dataclasses.replace(record, held=True)
        self._last = record
        return record

    def _failure(self, error: Exception) -> Failure:
        try:
            return self._classify(error)
        except Exception:
            log.exception("classifying a build failure failed; holding its changes")
            return PERMANENT
