"""The one tree of headwater's exceptions, each mapped to an exit code by the CLI.

HeadwaterError                 base; never raised itself
├── ConfigError                bad usage or configuration (exit 2)
├── ContentError               content breaks the model; carries every Problem (exit 1)
├── SourceError                the CMS or network failed (exit 3)
├── OutputError                the output folder could not be written safely (exit 2)
└── BuildFailedError           a build the webhook receiver ran, its deploy command, or the
                               build hook it called failed; `transient` says whether to retry
"""

from __future__ import annotations

from collections.abc import Sequence

from headwater.model import Problem


class HeadwaterError(Exception):
    """Base of every error headwater raises on purpose."""

    exit_code = 2


class ConfigError(HeadwaterError):
    """Bad usage or configuration: a missing variable, an unknown option value."""

    exit_code = 2


class ContentError(HeadwaterError):
    """The content breaks the model; `problems` lists every one found, not just the first."""

    exit_code = 1

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        super().__init__(f"{count} content problem{'s' if count != 1 else ''}")


class SourceError(HeadwaterError):
    """The CMS could not be reached or refused us; nothing was published."""

    exit_code = 3


class OutputError(HeadwaterError):
    """A path would land outside the output folder, or the folder cannot be swapped."""

    exit_code = 2


class BuildFailedError(HeadwaterError):
    """A build the webhook receiver ran, the deploy command after it, or a build-hook call failed.

    The message is one sentence an operator can act on, never a library's exception text (which
    may embed a secret URL). `transient` failures (the network, a busy server, a killed build)
    are worth retrying later; the others (the content, the configuration, a hook that refuses)
    would fail again the same way. `retry_after` is the wait in seconds the other side asked
    for; `details` are the lines that explain the failure, e.g. each content problem.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.details = tuple(details)
