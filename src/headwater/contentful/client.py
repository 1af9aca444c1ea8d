"""One HTTP client for Contentful's Delivery, Preview and Management APIs, with one retry policy.

Every request carries its token in the Authorization header only; messages and log lines name
a request by its method and path, never by a URL or an exception text that could carry one.
Connection errors and 5xx are retried with jittered exponential backoff, 429 waits for
`X-Contentful-RateLimit-Reset`, and every request has one deadline for all of it — connecting,
each retry, and the whole body, however slowly it trickles — after which it fails (exit 3).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from headwater.errors import SourceError

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Params = Mapping[str, str | int]
Json = dict[str, Any]

CONNECT_TIMEOUT = 5.0
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RATE_LIMIT_CAP = 120.0
"""The longest wait a 429 may ask for; Contentful's resets are seconds, not minutes."""
TOO_BIG = "Response size too big"
READ_SIZE = 65536

_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class RefusedError(SourceError):
    """Contentful answered a request with a 4xx it will answer again: not worth retrying."""

    def __init__(self, message: str, status: int, error_id: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id


class _DeadlineError(Exception):
    """The request's deadline passed while its body was being read."""


@dataclass
class ContentfulClient:
    """One API (delivery, preview or management) of one space environment, over an injectable
    session (tests pass one whose requests `responses` answers)."""

    base_url: str
    token: str = field(repr=False)
    token_variable: str
    space: str
    environment: str
    session: requests.Session
    sleep: Sleep = time.sleep
    jitter: Callable[[], float] = random.random
    max_attempts: int = MAX_ATTEMPTS
    deadline: float = 60.0
    clock: Callable[[], float] = time.monotonic
    requests_made: int = 0

    @property
    def root(self) -> str:
        return f"/spaces/{self.space}/environments/{self.environment}"

    def get(self, path: str, params: Params | None = None) -> Json:
        """The JSON object at root + path; SourceError when Contentful cannot or will not
        answer."""
        data = self.request("GET", self.root + path, params=params)
        assert data is not None
        return data

    def get_page(self, path: str, params: Params) -> Json | None:
        """Like get, but None when Contentful answers 400 "Response size too big"."""
        return self.request("GET", self.root + path, params=params, shrinkable=True)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Json | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        version: int | None = None,
        what: str = "",
        missing_ok: bool = False,
        shrinkable: bool = False,
        url: str | None = None,
    ) -> Json | None:
        """method path (below base_url, or at `url`), retried as the module says.

        Returns the JSON object answered ({} for an empty answer), or None for 404 with
        `missing_ok` and for "Response size too big" with `shrinkable`. RefusedError for any
        other 4xx, SourceError when the deadline passes or the retries run out.
        """
        where = f"{method} {path}" + (f" ({what})" if what else "")
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/vnd.contentful.management.v1+json"
        if version is not None:
            all_headers["X-Contentful-Version"] = str(version)
        target = url or self.base_url + path
        deadline_at = self.clock() + self.deadline
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline_at - self.clock()
            if remaining <= 0:
                break
            self.requests_made += 1
            wait = self._backoff(attempt)
            try:
                status, reason, answer, rate_reset = self._send(
                    method, target, params, body, data, all_headers, deadline_at
                )
            except _RETRYABLE as exc:
                last = type(exc).__name__  # its text repeats the URL
            except _DeadlineError:
                last = "the answer did not arrive in time"
                break
            else:
                if 200 <= status < 300:
                    if answer is None:
                        return {}
                    if isinstance(answer, dict):
                        return answer
                    last = f"a {status} answer that is not a JSON object"
                elif status == 429:
                    last = "429 rate limit exceeded"
                    wait = _reset_seconds(rate_reset, wait)
                elif status >= 500:
                    last = f"{status} {self._scrub(reason)}".strip()
                else:
                    error_id, message = _error_text(answer, reason)
                    message = self._scrub(message)
                    if shrinkable and status == 400 and TOO_BIG in message:
                        return None
                    if missing_ok and status == 404:
                        return None
                    raise self._refusal(status, error_id, message, where)
            remaining = deadline_at - self.clock()
            if attempt < self.max_attempts and remaining > 0:
                wait = min(wait, remaining)
                log.warning(
                    "Contentful %s: %s; retrying in %.1f s (attempt %d of %d)",
                    where,
                    last,
                    wait,
                    attempt + 1,
                    self.max_attempts,
                )
                self.sleep(wait)
        if deadline_at - self.clock() <= 0:
            raise SourceError(
                f"Contentful did not answer {where} within {self.deadline:.0f} s "
                f"(last: {last or 'no answer'}); nothing was changed"
            )
        raise SourceError(
            f"Contentful did not answer {where} after {self.max_attempts} attempts "
            f"(last: {last}); nothing was changed"
        )

    def _send(
        self,
        method: str,
        target: str,
        params: Mapping[str, Any] | None,
        body: Json | None,
        data: bytes | None,
        headers: Mapping[str, str],
        deadline_at: float,
    ) -> tuple[int, str, Any, str | None]:
        """One attempt: (status, reason, the parsed JSON answer or None, rate-limit reset)."""
        remaining = max(0.001, deadline_at - self.clock())
        response = self.session.request(
            method,
            target,
            params=params,
            json=body,
            data=data,
            headers=headers,
            timeout=(min(CONNECT_TIMEOUT, remaining), remaining),
            stream=True,
        )
        with response:
            content = _read_body(response, deadline_at, self.clock)
            answer: Any = None
            if content:
                try:
                    answer = json.loads(content)
                except ValueError:
                    answer = None
            return (
                response.status_code,
                response.reason or "",
                answer,
                response.headers.get("X-Contentful-RateLimit-Reset"),
            )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so parallel builds do not retry in step."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return float(ceiling * (0.5 + self.jitter() / 2))

    def _refusal(self, status: int, error_id: str, message: str, where: str) -> RefusedError:
        detail = f"{status} {': '.join(p for p in (error_id, message) if p)}".strip()
        if status == 401:
            text = (
                f"Contentful refused the access token ({detail}) for {where}; "
                f"check {self.token_variable}"
            )
        elif status == 403:
            text = (
                f"Contentful denied access ({detail}) for {where}; check that "
                f"{self.token_variable} may use environment {self.environment!r}"
            )
        elif status == 404:
            text = f"Contentful found nothing at {where} ({detail})"
        elif status == 409:
            text = f"{where}: someone changed it in Contentful meanwhile ({detail}); run again"
        else:
            text = f"Contentful refused {where}: {detail}"
        return RefusedError(text, status, error_id)

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _read_body(
    response: requests.Response, deadline_at: float, clock: Callable[[], float]
) -> bytes:
    """The whole body, or _DeadlineError once deadline_at passes — however slowly it comes:
    each read returns what has arrived, and a watchdog shuts the socket down at the deadline
    so that a read waiting on a silent server returns too."""
    raw = response.raw
    sock = _socket_of(raw)
    watchdog = None
    if sock is not None:
        watchdog = threading.Timer(max(0.0, deadline_at - clock()), _shut, (sock,))
        watchdog.daemon = True
        watchdog.start()
    chunks: list[bytes] = []
    try:
        while True:
            if clock() > deadline_at:
                raise _DeadlineError
            try:
                chunk = raw.read1(READ_SIZE, decode_content=True)
            except (OSError, *_RETRYABLE) as exc:
                if clock() >= deadline_at:
                    raise _DeadlineError from exc
                raise requests.ConnectionError(type(exc).__name__) from None
            except Exception as exc:  # urllib3's protocol errors when the socket is shut
                if clock() >= deadline_at:
                    raise _DeadlineError from exc
                raise requests.ConnectionError(type(exc).__name__) from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        if watchdog is not None:
            watchdog.cancel()
            # Wait for its thread to end (at once, once cancelled): a build forks workers and
            # cache writers only when it runs no other thread.
            watchdog.join()


def _socket_of(raw: Any) -> socket.socket | None:
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already: the read has returned
        sock.shutdown(socket.SHUT_RDWR)


def _reset_seconds(value: str | None, fallback: float) -> float:
    """Seconds until Contentful accepts requests again, from its rate-limit header."""
    try:
        seconds = float(value or "")
    except ValueError:
        return fallback
    return min(max(seconds, 0.0), RATE_LIMIT_CAP)


def _error_text(answer: Any, reason: str) -> tuple[str, str]:
    """(error id, message) from Contentful's error body: sys.id names the error, message
    explains it, and a Management API validation error lists its details."""
    if not isinstance(answer, dict):
        return "", reason
    sys = answer.get("sys")
    error_id = str(sys.get("id", "")) if isinstance(sys, dict) else ""
    message = str(answer.get("message") or reason or "")
    details = answer.get("details")
    errors = details.get("errors") if isinstance(details, dict) else None
    if isinstance(errors, list) and errors:
        listed = "; ".join(
            f"{'.'.join(map(str, e.get('path', [])))}: {e.get('details') or e.get('name')}"
            for e in errors
            if isinstance(e, dict)
        )
        message = f"{message} ({listed})"
    return error_id, message
