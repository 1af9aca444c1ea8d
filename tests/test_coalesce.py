"""The rebuild queue: one build per burst, one follow-up for changes during a build, failures
recorded. Time is a controllable clock; every wait is on a condition, never a sleep."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support import FakeClock

from headwater.coalesce import BuildRecord, QueueStatus, RebuildQueue

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


def test_a_failing_build_is_recorded_and_the_next_change_builds_again(
    queue: RebuildQueue[int, str], clock: FakeClock, builder: Builder
) -> None:
    failure = RuntimeError("templates/base.html is broken")
    builder.failures.append(failure)
    queue.submit(1)
    clock.advance(QUIET)
    status = wait_builds(queue, 1)

    assert status.state == "idle"
    assert status.last is not None
    assert status.last.error is failure
    assert not status.last.ok
    summary = status.as_dict()
    assert summary["state"] == "idle"
    assert summary["last_build"]["result"] == "failed"
    assert summary["last_build"]["error"] == "templates/base.html is broken"

    queue.submit(2)
    clock.advance(QUIET)
    status = wait_builds(queue, 2)

    assert builder.batches == [frozenset({1}), frozenset({2})]
    assert status.last is not None
    assert status.last.ok
    assert status.last.result == "built 1"
    assert status.as_dict()["last_build"]["error"] is None


def test_stop_lets_the_running_build_finish_and_drops_what_is_queued(
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
    assert (status.state, status.queued, status.builds) == ("stopped", 0, 1)
    assert status.last is not None
    assert status.last.result == "built 1"
    assert builder.batches == [frozenset({1})]
    assert not queue.submit(3)


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
        (2, True, frozenset({2})),
    ]


def test_the_real_monotonic_clock_runs_builds_too(builder: Builder) -> None:
    with RebuildQueue(builder, quiet=0.01, max_delay=0.05) as queue:
        queue.submit(7)
        status = wait_builds(queue, 1)
    assert builder.batches == [frozenset({7})]
    assert status.last is not None
    assert status.last.duration >= 0
    assert queue.status().state == "stopped"
