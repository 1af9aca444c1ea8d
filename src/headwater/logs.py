"""How a long-running service logs: one ISO-8601 UTC timestamped line per record on stderr,
with secrets (a build hook's URL) masked in whatever any library writes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

HANDLER_NAME = "headwater"
"""The name of the handler the CLI installs on the root logger, so it can be replaced."""
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MASK = "…"


class UTCFormatter(logging.Formatter):
    """Timestamps like 2026-12-03T09:41:07Z."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or DATE_FORMAT, time.gmtime(record.created))


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


def use_service_logging(
    *, secrets: Iterable[str] = (), level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Log the headwater loggers at `level` as timestamped lines on stream (stderr), replacing
    the CLI's handler, and mask `secrets` in every line any handler writes."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(UTCFormatter(FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    redact = Redact(secrets)
    for each in root.handlers:
        each.addFilter(redact)
    logging.getLogger("headwater").setLevel(level)
