"""The rebuild queue: one build per burst, one follow-up for changes during a build; transient
failures retried with backoff, permanent ones held for the next change; restored changes due at
once. Time is a controllable clock; every wait is on a condition, never a sleep."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support import FakeClock

from headwater.coalesce import Backoff, BuildRecord, Failure, QueueStatus, RebuildQueue

WAIT = 30.0
"""Generous bound for any wait: only reached when the behaviour under test is broken."""


class Builder:
    """The build callable: records each batch; `hold()` makes the next builds block."""

    def __init__(self) -> None:
        self.batches: list[frozenset[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.failures: list[Exception] = []

    def hold(self) -> None:
        self.release.clear()

    def __call__(self, changes: frozenset[int]) -> str:
        self.batches.append(changes)
        self.started.set()
        if not self.release.wait(WAIT):
            raise TimeoutError("the test never released the build")
        if self.failures:
            raise self.failures.pop(0)
        return f"built {len(changes)}"


QUIET = 0.125
MAX_DELAY = 0.5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def builder() -> Builder:
    return Builder()


@pytest.fixture
def queue(clock: FakeClock, builder: Builder) -> Iterator[RebuildQueue[int, str]]:
    rebuilds: RebuildQueue[int, str] = RebuildQueue(
        builder, quiet=QUIET, max_delay=MAX_DELAY, clock=clock
    )
    clock.on_advance(rebuilds.wake)
    rebuilds.start()
    yield rebuilds
    builder.release.set()
    assert rebuilds.stop(timeout=WAIT)


def wait_builds(queue: RebuildQueue[int, str], count: int) -> QueueStatus[int, str]:
    assert queue.wait_for(lambda s: s.builds >= count, WAIT), queue.status()
    assert queue.wait_idle(WAIT)
    return queue.status()


def test_a_burst_of_fifty_changes_builds_once_with_all_of_them(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    for change in range(50):
        assert queue.submit(change)
    status = queue.status()
    assert (status.state, status.queued, status.builds) == ("waiting", 50, 0)

    clock.advance(QUIET)
    status = wait_builds(queue, 1)

    assert builder.batches == [frozenset(range(50))]
    assert status.builds == 1
    assert status.last is not None
    assert status.last.result == "built 50"
    assert status.last.changes == frozenset(range(50))


def test_changes_during_a_build_fold_into_exactly_one_follow_up(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    builder.hold()
    queue.submit(-1)
    clock.advance(QUIET)
    assert builder.started.wait(WAIT)

    for change in range(10):
        queue.submit(change)
    status = queue.status()
    assert (status.state, status.queued, status.builds) == ("building", 10, 0)

    builder.release.set()
    clock.advance(QUIET)
    status = wait_builds(queue, 2)

    assert builder.batches == [frozenset({-1}), frozenset(range(10))]
    assert status.builds == 2


def test_max_delay_starts_a_build_while_changes_keep_arriving(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    step = QUIET / 2
    queue.submit(0)
    for change in range(1, 8):
        clock.advance(step)
        queue.submit(change)
    # A change every half quiet period: the quiet period never elapses.
    assert clock() == MAX_DELAY - step
    assert queue.status().builds == 0

    clock.advance(step)
    assert clock() < MAX_DELAY - step + QUIET  # still inside the last change's quiet period
    wait_builds(queue, 1)

    assert builder.batches == [frozenset(range(8))]


def test_a_failing_build_is_held_and_the_next_change_builds_it_again(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    failure = RuntimeError("templates/base.html is broken")
    builder.failures.append(failure)
    queue.submit(1)
    clock.advance(QUIET)
    status = wait_builds(queue, 1)

    assert (status.state, status.queued, status.held, status.attempts) == ("held", 1, 1, 1)
    assert status.last is not None
    assert status.last.error is failure
    assert status.last.held
    assert not status.last.ok
    summary = status.as_dict()
    assert summary["state"] == "held"
    assert summary["last_build"]["result"] == "failed"
    assert summary["last_build"]["error"] == "templates/base.html is broken"

    clock.advance(MAX_DELAY * 10)  # however long: a held batch is not due by itself
    assert queue.status().state == "held"

    queue.submit(2)
    status = queue.status()
    assert (status.state, status.queued, status.held) == ("waiting", 2, 0)
    clock.advance(QUIET)
    status = wait_builds(queue, 2)

    assert builder.batches == [frozenset({1}), frozenset({1, 2})]
    assert status.last is not None
    assert status.last.ok
    assert status.last.attempt == 2
    assert status.last.result == "built 2"
    assert (status.state, status.attempts) == ("idle", 0)
    assert status.as_dict()["last_build"]["error"] is None


def test_stop_lets_the_running_build_finish_and_keeps_what_is_queued(
    clock: FakeClock, builder: Builder
) -> None:
    queue: RebuildQueue[int, str] = RebuildQueue(builder, quiet=QUIET, clock=clock)
    queue.start()
    builder.hold()
    queue.submit(1)
    clock.advance(QUIET)
    assert builder.started.wait(WAIT)
    queue.submit(2)

    def release_once_stopping() -> None:
        if queue.wait_for(lambda status: status.stopping, WAIT):
            builder.release.set()

    releaser = threading.Thread(target=release_once_stopping)
    releaser.start()
    try:
        assert queue.stop(timeout=WAIT)
    finally:
        builder.release.set()
        releaser.join(WAIT)

    status = queue.status()
    assert (status.state, status.queued, status.builds) == ("stopped", 1, 1)
    assert status.last is not None
    assert status.last.result == "built 1"
    assert builder.batches == [frozenset({1})]
    assert not queue.submit(3)
    assert not queue.restore([4])
    assert queue.status().queued == 1


def test_subscribers_hear_every_build_and_a_failing_one_is_kept(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    heard: list[BuildRecord[int, str]] = []

    def broken(record: BuildRecord[int, str]) -> None:
        raise ValueError("subscriber bug")

    queue.subscribe(broken)
    unsubscribe = queue.subscribe(heard.append)
    builder.failures.append(RuntimeError("bad content"))
    queue.submit(1)
    clock.advance(QUIET)
    wait_builds(queue, 1)
    queue.submit(2)
    clock.advance(QUIET)
    wait_builds(queue, 2)
    unsubscribe()
    queue.submit(3)
    clock.advance(QUIET)
    wait_builds(queue, 3)

    assert [(r.number, r.ok, r.changes) for r in heard] == [
        (1, False, frozenset({1})),
        (2, True, frozenset({1, 2})),
    ]


def test_the_real_monotonic_clock_runs_builds_too(builder: Builder) -> None:
    with RebuildQueue(builder, quiet=0.01, max_delay=0.05) as queue:
        queue.submit(7)
        status = wait_builds(queue, 1)
    assert builder.batches == [frozenset({7})]
    assert status.last is not None
    assert status.last.duration >= 0
    assert queue.status().state == "stopped"


class Flaky(Exception):
    """A failure the tests' classifier calls transient."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("the hook is busy")
        self.retry_after = retry_after


def transient_if_flaky(error: Exception) -> Failure:
    if isinstance(error, Flaky):
        return Failure(transient=True, retry_after=error.retry_after)
    return Failure(transient=False)


BASE = 1.0
CAP = 8.0


@pytest.fixture
def retrying(clock: FakeClock, builder: Builder) -> Iterator[RebuildQueue[int, str]]:
    """A queue whose Flaky failures are retried; jitter 0, so each wait is half a step."""
    rebuilds: RebuildQueue[int, str] = RebuildQueue(
        builder,
        quiet=QUIET,
        max_delay=MAX_DELAY,
        clock=clock,
        classify=transient_if_flaky,
        backoff=Backoff(base=BASE, cap=CAP),
        jitter=lambda: 0.0,
    )
    clock.on_advance(rebuilds.wake)
    rebuilds.start()
    yield rebuilds
    builder.release.set()
    assert rebuilds.stop(timeout=WAIT)


def test_backoff_doubles_to_the_cap_with_equal_jitter() -> None:
    backoff = Backoff(base=10, cap=600)
    assert [backoff.delay(n, 0.0) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert [backoff.delay(n, 1.0) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]
    assert backoff.delay(1000, 0.5) == 450
    assert backoff.delay(1, 0.0, retry_after=120) == 120
    assert backoff.delay(3, 0.0, retry_after=1) == 20
    assert backoff.delay(1, 0.0, retry_after=10**9) == backoff.longest_retry_after
    with pytest.raises(ValueError):
        Backoff(base=0)


def test_transient_failures_retry_with_backoff_until_a_build_succeeds(
    retrying: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    builder.failures += [Flaky(), Flaky(), Flaky()]
    retrying.submit(1)
    clock.advance(QUIET)
    waits = []
    for attempt in (1, 2, 3):

        def reached(status: QueueStatus[int, str], n: int = attempt) -> bool:
            return status.builds == n

        assert retrying.wait_for(reached, WAIT)
        status = retrying.status()
        assert (status.state, status.attempts, status.queued) == ("retrying", attempt, 1)
        assert status.last is not None
        assert status.last.retry_in is not None
        assert status.retry_in == status.last.retry_in
        waits.append(status.retry_in)
        clock.advance(status.retry_in - 0.01)
        assert retrying.status().state == "retrying"  # not a moment early
        clock.advance(0.01)
    status = wait_builds(retrying, 4)

    assert waits == [BASE / 2, BASE, 2 * BASE]
    assert builder.batches == [frozenset({1})] * 4
    assert (status.state, status.attempts, status.queued) == ("idle", 0, 0)
    assert status.last is not None
    assert (status.last.ok, status.last.attempt) == (True, 4)


def test_changes_arriving_during_a_retry_wait_join_the_next_attempt(
    retrying: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    builder.failures.append(Flaky(retry_after=5.0))
    retrying.submit(1)
    clock.advance(QUIET)
    assert retrying.wait_for(lambda s: s.builds == 1, WAIT)
    assert retrying.status().retry_in == 5.0  # Retry-After beats the half-second backoff

    retrying.submit(2)
    clock.advance(QUIET)  # the new change's quiet period is over, the retry wait is not
    assert retrying.status().state == "retrying"
    clock.advance(5.0)
    wait_builds(retrying, 2)

    assert builder.batches == [frozenset({1}), frozenset({1, 2})]


def test_a_transient_failure_merges_with_changes_that_came_during_the_build(
    retrying: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    builder.hold()
    builder.failures.append(Flaky())
    retrying.submit(1)
    clock.advance(QUIET)
    assert builder.started.wait(WAIT)
    retrying.submit(2)
    builder.release.set()
    assert retrying.wait_for(lambda s: s.builds == 1, WAIT)
    status = retrying.status()
    assert (status.state, status.queued) == ("retrying", 2)
    clock.advance(BASE)
    wait_builds(retrying, 2)

    assert builder.batches == [frozenset({1}), frozenset({1, 2})]


def test_a_permanent_failure_is_not_retried_however_long_it_waits(
    retrying: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    builder.failures.append(ValueError("bad content"))
    retrying.submit(1)
    clock.advance(QUIET)
    status = wait_builds(retrying, 1)
    assert (status.state, status.held, status.retry_in) == ("held", 1, None)

    clock.advance(CAP * 100)
    assert retrying.wait_idle(WAIT)
    assert (retrying.status().builds, builder.batches) == (1, [frozenset({1})])


def test_restored_changes_are_due_at_once(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    assert queue.restore([1, 2, 3])
    status = wait_builds(queue, 1)  # the clock never moves: no quiet period to wait out

    assert builder.batches == [frozenset({1, 2, 3})]
    assert status.state == "idle"
    assert queue.restore([])
