"""The one tree of headwater's exceptions, each mapped to an exit code by the CLI.

HeadwaterError                 base; never raised itself
├── ConfigError                bad usage or configuration (exit 2)
├── ContentError               content breaks the model; carries every Problem (exit 1)
├── SourceError                the CMS or network failed (exit 3)
├── OutputError                the output folder could not be written safely (exit 2)
└── BuildFailedError           a build the webhook receiver started, or its deploy, failed
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
    """A build the webhook receiver ran (or the deploy command after it) exited with an error."""

    exit_code = 1
