"""What the webhook receiver runs per batch: `headwater build` in a subprocess, or a call to a
build hook; each failure becomes one readable sentence, marked transient or not.

Transient (retried with backoff): a build hook unreachable, timing out, answering 5xx, 408 or
429 (honouring Retry-After); a build that could not reach the CMS (exit 3), was killed by a
signal that was not ours, or timed out; a deploy command that failed. Permanent (held until
the next change): a build failing on content (exit 1) or configuration (exit 2), a hook
answering any other 4xx.

A build hook's URL is a secret (whoever holds it can trigger builds), so nothing here puts it
in a message: only its host. requests' and urllib3's exception texts embed the URL and are
never passed on.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import requests

from headwater.changes import Change, changes_json, summarise
from headwater.coalesce import PERMANENT, Failure
from headwater.errors import BuildFailedError, ConfigError

log = logging.getLogger(__name__)

CHANGES_ENV = "HEADWATER_CHANGES"
"""The environment variable a `--build` build finds the changes in, as a JSON list."""
BUILD_TIMEOUT = 1800.0
FORWARD_TIMEOUT = 30.0
MAX_DETAILS = 20
"""Problem lines kept with a failure (the build's own output has them all)."""
EXIT_CONTENT, EXIT_CONFIG, EXIT_SOURCE = 1, 2, 3
PROBLEM_LINE = re.compile(r"^\S.*?: \[[\w-]+\] ")
"""A content problem as `headwater build` prints it: `where: field: [rule] message`."""


def failure_of(error: Exception) -> Failure:
    """The queue's classification of a build that raised `error`."""
    if isinstance(error, BuildFailedError) and error.transient:
        return Failure(transient=True, retry_after=error.retry_after)
    return PERMANENT


def describe(error: Exception) -> str:
    """One readable sentence for /status and the journal, whatever was raised."""
    if isinstance(error, BuildFailedError):
        return str(error)
    # A bug of ours, not the build's: its text may be anything, so name only its type.
    return f"the receiver failed unexpectedly ({type(error).__name__}); see its log"


def hook_host(url: str) -> str:
    """The part of a build-hook URL that may be shown: its host (and port, if given)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def check_hook_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; else ConfigError, which never
    repeats the value (it may be a real hook URL with a typo)."""
    try:
        parts = urlsplit(url.strip())
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            "--forward needs an absolute http:// or https:// URL with a host, like "
            "https://api.netlify.com/build_hooks/<id>; the value given is not one (not shown: "
            "a build hook URL is a secret)"
        )
    return url.strip()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None when
    absent or unreadable. A date in the past means no wait."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class Forwarder:
    """Calls a build hook (Netlify's) once per batch, titled with what changed."""

    def __init__(
        self, url: str, session: requests.Session | None = None, timeout: float = FORWARD_TIMEOUT
    ) -> None:
        self._url = url
        self.host = hook_host(url)
        self._session = session or requests.Session()
        self._timeout = timeout

    def __call__(self, changes: frozenset[Change]) -> str:
        title = summarise(changes)
        body = {"source": "headwater", "changes": changes_json(changes)}
        where = f"the build hook at {self.host}"
        try:
            response = self._session.post(
                self._url, params={"trigger_title": title}, json=body, timeout=self._timeout
            )
        except requests.ConnectionError:
            raise BuildFailedError(f"could not connect to {where}", transient=True) from None
        except requests.Timeout:
            raise BuildFailedError(
                f"{where} did not answer within {self._timeout:.0f} s", transient=True
            ) from None
        except requests.RequestException as exc:
            raise BuildFailedError(
                f"the call to {where} failed ({type(exc).__name__})", transient=True
            ) from None
        with response:
            status = response.status_code
            if status < 400:
                return f"forwarded to {where}"
            answer = f"{where} answered {status} {_reason(status)}"
            if status >= 500 or status in (408, 429):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise BuildFailedError(answer, transient=True, retry_after=retry_after)
            raise BuildFailedError(
                f"{answer}; check the hook URL (a deleted hook answers 404)"
                if status == 404
                else answer
            )

    def close(self) -> None:
        self._session.close()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"


class SubprocessBuilder:
    """Builds in a child `python -m headwater build`, then runs the deploy command, if any.

    A failed build raises BuildFailedError saying why, with its problem lines; the live output
    stays the last good one because a build swaps it in atomically.
    """

    def __init__(
        self,
        project: Path,
        *,
        source: str | None = None,
        preview: bool = False,
        deploy_command: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = BUILD_TIMEOUT,
    ) -> None:
        self._project = project
        self._source = source
        self._preview = preview
        self._deploy = deploy_command
        self._env = dict(os.environ if env is None else env)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: subprocess.Popen[str] | None = None
        self._terminated = False

    def command(self, changes: frozenset[Change]) -> list[str]:
        command = [sys.executable, "-m", "headwater", "--project", str(self._project), "build"]
        if self._source:
            command += ["--source", self._source]
        if self._preview:
            command.append("--preview")
        if any(change.full for change in changes):
            command.append("--full")
        return command

    def __call__(self, changes: frozenset[Change]) -> str:
        env = {**self._env, CHANGES_ENV: json.dumps(changes_json(changes))}
        self._run("build", self.command(changes), env, shell=False)
        if self._deploy:
            self._run("deploy", self._deploy, env, shell=True)
        return "built and deployed" if self._deploy else "built"

    def _run(self, what: str, command: str | list[str], env: dict[str, str], shell: bool) -> None:
        try:
            # A session of its own: Ctrl-C in the terminal stops the receiver, which then lets
            # the build finish rather than have it interrupted too.
            process = subprocess.Popen(
                command,
                shell=shell,
                env=env,
                cwd=self._project,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise BuildFailedError(
                f"the {what} could not be started ({exc.strerror or type(exc).__name__})",
                transient=True,
            ) from None
        with process:
            with self._lock:
                self._running = process
            try:
                output, _ = process.communicate(timeout=self._timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise BuildFailedError(
                    f"the {what} took more than {self._timeout:.0f} s and was stopped",
                    transient=True,
                ) from None
            finally:
                with self._lock:
                    self._running = None
        lines = output.strip().splitlines()
        if process.returncode == 0:
            for line in lines:
                log.info("%s: %s", what, line)
            return
        with self._lock:
            stopped, self._terminated = self._terminated, False
        # The failure's own report carries the lines that explain it; the rest is detail.
        for line in lines:
            log.debug("%s: %s", what, line)
        raise exit_failure(what, process.returncode, lines, stopped=stopped)

    def terminate(self) -> None:
        """Stop a running build (after the shutdown grace period)."""
        with self._lock:
            if self._running is not None and self._running.poll() is None:
                self._terminated = True
                self._running.terminate()


def exit_failure(
    what: str, returncode: int, lines: Sequence[str], *, stopped: bool = False
) -> BuildFailedError:
    """The failure of a `build` or `deploy` child that exited with returncode, printing lines.

    `headwater build` exits 1 for content, 2 for configuration, 3 for the CMS or network.
    """
    tail = [line for line in lines if line.strip()][-5:]
    if returncode < 0:
        if stopped:
            return BuildFailedError(
                f"the {what} was stopped because the receiver shut down", transient=True
            )
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return BuildFailedError(f"the {what} was killed by {name}", transient=True, details=tail)
    if what != "build":
        # A deploy command's exit codes mean nothing to us; most failures are the network.
        return BuildFailedError(
            f"the {what} command exited with status {returncode}"
            + (f": {tail[-1]}" if tail else ""),
            transient=True,
            details=tail,
        )
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return BuildFailedError(
            f"the build crashed: {tail[-1] if tail else f'exit status {returncode}'}",
            details=tail,
        )
    if returncode == EXIT_CONTENT:
        problems = [line for line in lines if PROBLEM_LINE.match(line)]
        count = len(problems)
        what_failed = (
            f"{count} problem{'s' if count != 1 else ''} (first: {problems[0]})"
            if problems
            else (tail[-1] if tail else "no message")
        )
        return BuildFailedError(
            f"the build failed because of content: {what_failed}",
            details=problems[:MAX_DETAILS] or tail,
        )
    if returncode == EXIT_CONFIG:
        reason = errors[-1] if errors else (tail[-1] if tail else "no message")
        return BuildFailedError(
            f"the build failed because of its configuration: {reason}", details=errors or tail
        )
    if returncode == EXIT_SOURCE:
        reason = errors[-1] if errors else (tail[-1] if tail else "no message")
        return BuildFailedError(
            f"the build could not read the CMS: {reason}", transient=True, details=errors or tail
        )
    return BuildFailedError(
        f"the build exited with status {returncode}" + (f": {tail[-1]}" if tail else ""),
        details=tail,
    )
