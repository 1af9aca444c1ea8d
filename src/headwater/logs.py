"""How every command logs: one line per record on stderr — an ISO-8601 UTC time, the level, the
message — coloured on a terminal, plain when piped or NO_COLOR is set, with secrets (a build
hook's URL) masked in whatever any library writes."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO

HANDLER_NAME = "headwater"
"""The name of the handler the CLI installs on the root logger, so it can be replaced."""
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MASK = "…"

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_LEVEL_COLOURS = {
    logging.DEBUG: "\x1b[2m",
    logging.INFO: "\x1b[36m",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[1;31m",
    logging.CRITICAL: "\x1b[1;31m",
}


class UTCFormatter(logging.Formatter):
    """Timestamps like 2026-12-03T09:41:07Z."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or DATE_FORMAT, time.gmtime(record.created))


class LineFormatter(UTCFormatter):
    """`2026-12-03T09:41:07Z WARNING message`; with colour, the time dimmed and the level in
    its colour (the message itself is left as written, so it can be copied)."""

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__(FORMAT, DATE_FORMAT)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not self.colour:
            return line
        stamp = self.formatTime(record)
        level = record.levelname
        colour = _LEVEL_COLOURS.get(record.levelno, "")
        prefix = f"{stamp} {level} "
        if not line.startswith(prefix):
            return line
        return f"{_DIM}{stamp}{_RESET} {colour}{level}{_RESET} {line[len(prefix) :]}"


def wants_colour(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or
    the terminal says it is dumb."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Redact(logging.Filter):
    """Replaces each secret in a record's message and traceback with a mask.

    The record is formatted here, once, so a secret passed as an argument is caught too.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True


def use_cli_logging(level: int, *, stream: TextIO | None = None) -> logging.Handler:
    """Log the headwater loggers at `level` (other libraries at WARNING, or DEBUG with
    level DEBUG) as one line per record on stream (stderr), replacing an earlier handler of
    ours; returns the handler.

    Loggers already set to a lower level (pytest's caplog) stay there."""
    stream = stream or sys.stderr
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(LineFormatter(colour=wants_colour(stream)))
    root.addHandler(handler)
    libraries = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    root.setLevel(min(root.level, libraries) if root.level else libraries)
    ours = logging.getLogger("headwater")
    ours.setLevel(min(ours.level, level) if ours.level else level)
    return handler


@contextlib.contextmanager
def cli_logging(
    level: int, *, loggers: Mapping[str, int] | None = None, stream: TextIO | None = None
) -> Iterator[logging.Handler]:
    """use_cli_logging for the length of one command, with `loggers` (name → level) set
    apart, then every logger as it was (tests run many commands in one process)."""
    loggers = loggers or {}
    touched = [logging.getLogger(), logging.getLogger("headwater")]
    touched += [logging.getLogger(name) for name in loggers]
    saved = [(logger, logger.level) for logger in touched]
    handler = use_cli_logging(level, stream=stream)
    for name, own in loggers.items():
        logging.getLogger(name).setLevel(own)
    try:
        yield handler
    finally:
        root = logging.getLogger()
        for each in list(root.handlers):
            if each.get_name() == HANDLER_NAME:
                root.removeHandler(each)
        for logger, old in saved:
            logger.setLevel(old)


def use_service_logging(
    *, secrets: Iterable[str] = (), level: int | None = None, stream: TextIO | None = None
) -> None:
    """Log as the CLI does (see use_cli_logging), at `level` — by default the level the CLI
    chose for this command, else INFO — and mask `secrets` in every line any handler writes."""
    if level is None:
        level = logging.getLogger("headwater").level or logging.INFO
    use_cli_logging(level, stream=stream)
    redact = Redact(secrets)
    for each in logging.getLogger().handlers:
        each.addFilter(redact)
