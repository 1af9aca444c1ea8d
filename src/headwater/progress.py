"""A progress bar for long work: drawn on a terminal once the work has run a couple of
seconds, never in a pipe or a log file, and gone when the work ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich.progress is imported once a bar is drawn: most builds draw none
    from rich.console import Console
    from rich.progress import Progress, TaskID

DELAY = 2.0
"""Seconds of work before a bar appears: a quick build should print its summary line only."""
REFRESH = 0.1
"""Seconds between redraws."""


class BuildProgress:
    """A callable for BuildOptions.progress: `(stage, done, total)` moves the bar of `stage`
    (a total of 0: not known, so the bar counts without an end).

    The bar never starts a thread (rich's auto-refresh would stop a large build from forking
    its render workers); it redraws when told, at most every REFRESH seconds.
    """

    def __init__(
        self,
        console: Console,
        *,
        delay: float = DELAY,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool | None = None,
    ) -> None:
        self.console = console
        self.enabled = console.is_terminal if enabled is None else enabled
        self.delay = delay
        self.clock = clock
        self.started = clock()
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.drawn = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.bar is None:
            if now - self.started < self.delay:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.bar.start()
        end = total if total > 0 else None
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=end)
        self.bar.update(self.tasks[stage], completed=done, total=end)
        if (end is not None and done >= end) or now - self.drawn >= REFRESH:
            self.bar.refresh()
            self.drawn = now

    def close(self) -> None:
        """Take the bar off the screen, if it was drawn."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
