"""GET requests to Contentful's delivery and preview APIs, with timeouts, retries and clear errors.

Every request carries the access token in its Authorization header only; messages and log lines
name the request by its path, never by a URL that could carry credentials.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from headwater.errors import SourceError

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Params = Mapping[str, str | int]

TIMEOUT = (5.0, 30.0)
"""Seconds to connect and to wait for each read; a stalled CDN must not hang a build."""
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RATE_LIMIT_CAP = 120.0
"""The longest wait a 429 may ask for; Contentful's resets are seconds, not minutes."""
TOO_BIG = "Response size too big"

_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass
class ContentfulClient:
    """One API (delivery or preview) of one space environment, over an injectable session."""

    base_url: str
    token: str = field(repr=False)
    token_variable: str
    space: str
    environment: str
    session: requests.Session
    sleep: Sleep = time.sleep
    jitter: Callable[[], float] = random.random
    max_attempts: int = MAX_ATTEMPTS
    requests_made: int = 0

    @property
    def root(self) -> str:
        return f"/spaces/{self.space}/environments/{self.environment}"

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """The JSON object at root + path; SourceError when Contentful cannot or will not answer."""
        data = self._get(path, params, shrinkable=False)
        if data is None:  # only a shrinkable request may come back empty
            raise SourceError(f"Contentful said the response to GET {self.root}{path} is too big")
        return data

    def get_page(self, path: str, params: Params) -> dict[str, Any] | None:
        """Like get, but None when Contentful answers 400 "Response size too big"."""
        return self._get(path, params, shrinkable=True)

    def _get(self, path: str, params: Params | None, *, shrinkable: bool) -> dict[str, Any] | None:
        where = f"GET {self.root}{path}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self.requests_made += 1
            wait = self._backoff(attempt)
            try:
                response = self.session.get(
                    self.base_url + self.root + path,
                    params=params,
                    headers=headers,
                    timeout=TIMEOUT,
                )
            except _RETRYABLE as exc:
                # The exception text repeats the URL; the class name says enough.
                last = type(exc).__name__
            else:
                with response:
                    status = response.status_code
                    if status == 200:
                        try:
                            data = response.json()
                        except ValueError:
                            data = None
                        if isinstance(data, dict):
                            return data
                        last = "a 200 response that is not a JSON object"
                    elif status == 429:
                        last = "429 rate limit exceeded"
                        wait = _reset_seconds(response, wait)
                    elif status >= 500:
                        last = f"{status} {self._scrub(response.reason or '')}".strip()
                    else:
                        message = self._scrub(_error_message(response))
                        if shrinkable and status == 400 and TOO_BIG in message:
                            return None
                        raise self._refusal(status, message, where)
            if attempt < self.max_attempts:
                log.warning(
                    "Contentful %s: %s; retrying in %.1f s (attempt %d of %d)",
                    where,
                    last,
                    wait,
                    attempt + 1,
                    self.max_attempts,
                )
                self.sleep(wait)
        raise SourceError(
            f"Contentful did not answer {where} after {self.max_attempts} attempts "
            f"(last: {last}); nothing was changed"
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so parallel builds do not retry in step."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return float(ceiling * (0.5 + self.jitter() / 2))

    def _refusal(self, status: int, message: str, where: str) -> SourceError:
        detail = f"{status} {message}".strip()
        if status == 401:
            return SourceError(
                f"Contentful refused the access token ({detail}) for {where}; "
                f"check {self.token_variable}"
            )
        if status == 403:
            return SourceError(
                f"Contentful denied access ({detail}) for {where}; check that "
                f"{self.token_variable} may read environment {self.environment!r}"
            )
        if status == 404:
            return SourceError(
                f"Contentful has no space {self.space!r} with environment {self.environment!r} "
                f"({detail} for {where}); check CONTENTFUL_SPACE_ID and CONTENTFUL_ENVIRONMENT"
            )
        return SourceError(f"Contentful refused {where}: {detail}")

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _reset_seconds(response: requests.Response, fallback: float) -> float:
    """Seconds until Contentful accepts requests again, from its rate-limit header."""
    value = response.headers.get("X-Contentful-RateLimit-Reset", "")
    try:
        seconds = float(value)
    except ValueError:
        return fallback
    return min(max(seconds, 0.0), RATE_LIMIT_CAP)


def _error_message(response: requests.Response) -> str:
    """Contentful's error body names the error in sys.id and explains it in message."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(body, dict):
        return response.reason or ""
    error_id = body.get("sys", {}).get("id", "") if isinstance(body.get("sys"), dict) else ""
    message = body.get("message", "")
    return ": ".join(str(part) for part in (error_id, message) if part) or (response.reason or "")
