"""What every command shares: its consoles, -h/-v/-q/--version, the command list's order, the
log level, and how errors become exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from headwater import __version__
from headwater.config import SOURCES
from headwater.errors import ContentError, HeadwaterError
from headwater.logs import cli_logging

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
VERBOSITY = "headwater.verbosity"
VERSION = f"%(prog)s %(version)s (Python {sys.version.split()[0]})"
F = TypeVar("F", bound=Callable[..., Any])


COMMAND_ORDER = (
    "build",
    "serve",
    "validate",
    "new",
    "doctor",
    "pull",
    "schema",
    "preview",
    "webhook",
)
"""The command list's order: a newcomer's first commands first."""


class CommandGroup(click.Group):
    """Commands listed in the order a newcomer needs them, each with its whole first sentence
    (click would cut it to fit a line)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: order.get(name, len(order)))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.commands[name].get_short_help_str(limit=1000))
            for name in self.list_commands(ctx)
            if not self.commands[name].hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _count(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v and -q add up wherever they stand, before or after the command's name."""
    counts: dict[str, int] = ctx.find_root().meta.setdefault(VERBOSITY, {})
    name = param.name or ""
    counts[name] = counts.get(name, 0) + (value or 0)


def common_options(*, long_quiet: bool = True) -> Callable[[F], F]:
    """-v, -q and --version, on the group and on every command (-h comes with CONTEXT)."""

    def decorate(function: F) -> F:
        quiet = ("-q", "--quiet") if long_quiet else ("-q",)
        function = click.option(
            *quiet,
            "log_quiet",
            count=True,
            expose_value=False,
            callback=_count,
            help="Log less: no warnings (-q), nothing but errors of the command itself (-qq).",
        )(function)
        function = click.option(
            "-v",
            "--verbose",
            "log_verbose",
            count=True,
            expose_value=False,
            callback=_count,
            help="Log more: each stage with its timing (-v), debugging detail (-vv).",
        )(function)
        decorated: F = click.version_option(
            __version__, "--version", prog_name="headwater", message=VERSION
        )(function)
        return decorated

    return decorate


def log_level(base: int) -> int:
    """A command's log level: its usual one, one step lower per -v, one higher per -q."""
    context = click.get_current_context(silent=True)
    counts: dict[str, int] = context.find_root().meta.get(VERBOSITY, {}) if context else {}
    level = base - 10 * counts.get("log_verbose", 0) + 10 * counts.get("log_quiet", 0)
    return max(logging.DEBUG, min(level, logging.CRITICAL))


source_option = click.option(
    "--source",
    type=click.Choice(SOURCES),
    default="auto",
    show_default=True,
    help="Where content comes from; auto = Contentful when CONTENTFUL_SPACE_ID is set.",
)


def output_folder(value: str | None, default: str) -> str:
    """An --out value as a path: a relative one is taken from the current folder, as every
    other tool does; the default is the project's own folder."""
    return str(Path(value).resolve()) if value else default


def run_action(
    action: Callable[[], None], *, level: int = logging.WARNING, chatty: tuple[str, ...] = ()
) -> None:
    """Log at the command's level (see log_level; the `chatty` loggers one level lower, for
    what a long-running command says by default), run it, and map headwater's errors to
    their exit codes with one line each (every problem, for content)."""
    try:
        with cli_logging(log_level(level), loggers={n: log_level(logging.INFO) for n in chatty}):
            action()
    except ContentError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        err.print(f"{exc}; nothing was published.", markup=False)
        sys.exit(exc.exit_code)
    except HeadwaterError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
