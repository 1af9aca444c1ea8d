"""The webhook receiver: verify Contentful's webhooks, journal those that alter the site, and
hand them to the rebuild queue, whose build runs `headwater build` or calls a build hook.

An accepted webhook is a promise: the change is in the journal (on disk) before the 2xx goes
out, and leaves it only when a build that covers it has succeeded. Failed builds are retried
or held as builders.py classifies them; on start the receiver builds whatever is pending.

Answers: 202 journaled and queued; 200 acknowledged but ignored (a topic that cannot change
the site, or a repeated delivery); 400 malformed; 401 unsigned, malformed or expired signature
headers (no usable credentials); 403 a signature that does not match (tampered, or another
secret), or a payload from another space or environment; 405 any method but POST; 413 a body
over 1 MiB, refused from Content-Length or while streaming; 503 shutting down, or the journal
could not be written (Contentful retries it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from headwater.builders import describe
from headwater.changes import Change, classify, parse_change, payload_origin, summarise
from headwater.coalesce import BuildRecord, RebuildQueue
from headwater.contentful.signature import TTL, SignatureError, check_freshness, verify_request
from headwater.errors import BuildFailedError, ConfigError, HeadwaterError
from headwater.journal import Accepted, Journal, iso, parse_iso

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/contentful"
SECRET_ENV = "CONTENTFUL_WEBHOOK_SECRET"
MIN_SECRET = 32
"""Characters a signing secret needs at least; Contentful generates 64."""
MAX_BODY = 1024 * 1024
IDEMPOTENCY_HEADER = "x-contentful-idempotency-key"
TOPIC_HEADER = "x-contentful-topic"
QUIET = 5.0
MAX_DELAY = 60.0
STOP_TIMEOUT = 120.0
"""Seconds a running build may take to finish after SIGTERM before it is stopped."""
ALERT_AFTER = 900.0
"""Seconds a change may wait for a successful build before /healthz says something is wrong."""
STATUS_LIMIT = 10
"""Pending changes /status lists (it counts them all)."""
INSECURE = "[INSECURE: signatures not verified] "
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Receiver:
    """What the receiver's routes share: the secret (None: verification skipped), the journal
    and the queue its builds run from, and which space it serves (None: any)."""

    queue: RebuildQueue[Change, object]
    journal: Journal
    secret: str | None
    preview: bool = False
    mode: str = "build"
    target: str = "a local build"
    """What a batch goes to, safe to show: never a build hook's full URL."""
    space: str | None = None
    environment: str = "master"
    alert_after: float = ALERT_AFTER
    max_body: int = MAX_BODY
    ttl: float = TTL
    now: Callable[[], float] = time.time
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM or Ctrl-C: new webhooks are refused with 503 from then on."""

    def note(self, level: int, message: str, *args: object) -> None:
        """A request log line; every one says so when signatures are not verified."""
        log.log(level, (INSECURE if self.secret is None else "") + message, *args)


class Rejection(Exception):
    """A webhook request refused: the status to answer, and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_length(request: Request, limit: int) -> None:
    """Refuse (413) a body whose declared length passes limit, before reading any of it."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise Rejection(400, f"malformed Content-Length {length[:20]!r}")
        if int(length) > limit:
            raise Rejection(413, f"body of {int(length)} bytes declared (limit {limit})")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes limit, before the rest is read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejection(413, f"body passed {limit} bytes while streaming")
        chunks.append(chunk)
    return b"".join(chunks)


def _target(request: Request) -> str:
    """The request target as it came on the wire: the path as sent, and the query."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")


def check_origin(payload: object, space: str | None, environment: str) -> None:
    """Refuse (403) a payload from a space or environment other than the one served: a
    webhook of another space signed with the same secret must not rebuild this site."""
    if space is None:
        return
    found, found_environment = payload_origin(payload)
    if (found, found_environment) != (space, environment):
        raise Rejection(
            403,
            f"the payload is from space {found or '(none)'}, environment {found_environment}; "
            f"this receiver serves {space}/{environment}",
        )


@dataclass(frozen=True)
class Verifier:
    """How a webhook request is checked: Contentful's signature with this secret (None: not
    checked), made within ttl seconds of now, with a body of at most max_body bytes."""

    secret: str | None
    max_body: int = MAX_BODY
    ttl: float = TTL
    now: Callable[[], float] = time.time


async def verified_payload(receiver: Receiver | Verifier, request: Request) -> object:
    """The JSON body of a request whose signature holds; Rejection otherwise."""
    if request.method != "POST":
        raise Rejection(405, f"method {request.method} not allowed")
    _check_length(request, receiver.max_body)
    headers = dict(request.headers.items())
    if receiver.secret is not None:
        try:
            check_freshness(headers, now=receiver.now(), ttl=receiver.ttl)
        except SignatureError as exc:
            raise Rejection(exc.status, exc.reason) from None
    body = await _read_body(request, receiver.max_body)
    if receiver.secret is not None:
        try:
            verify_request(
                receiver.secret,
                request.method,
                _target(request),
                headers,
                body,
                now=receiver.now(),
                ttl=receiver.ttl,
            )
        except SignatureError as exc:
            raise Rejection(exc.status, exc.reason) from None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejection(400, f"the body is not JSON: {exc}") from None


async def _accept(receiver: Receiver, request: Request) -> Response:
    where = f"{request.method} {request.url.path}"
    if receiver.stopping.is_set():
        raise Rejection(503, "the receiver is shutting down")
    payload = await verified_payload(receiver, request)
    topic = request.headers.get(TOPIC_HEADER, "").strip()
    if not topic:
        raise Rejection(400, "no X-Contentful-Topic header")
    check_origin(payload, receiver.space, receiver.environment)
    kind = classify(topic, preview=receiver.preview)
    change = None
    if kind is not None:
        try:
            change = parse_change(kind, topic, payload, preview=receiver.preview)
        except ValueError as exc:
            raise Rejection(400, str(exc)) from None
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
    try:
        # Durable before the answer: after a 2xx, Contentful never sends this again.
        outcome = await asyncio.to_thread(receiver.journal.accept, change, key)
    except sqlite3.Error as exc:
        log.error("the journal %s refused a change: %s", receiver.journal.path, exc)
        raise Rejection(503, "the change could not be journaled; not accepted") from None
    if not isinstance(outcome, Accepted):
        receiver.note(
            logging.INFO, "%s: %s repeated (idempotency key %s); ignored", where, topic, key
        )
        return JSONResponse({"status": "duplicate", "topic": topic}, 200)
    if outcome.change is None:
        receiver.note(logging.INFO, "%s: %s cannot change the site; ignored", where, topic)
        return JSONResponse({"status": "ignored", "topic": topic}, 200)
    change = outcome.change
    if not receiver.queue.submit(change):
        # Stopped between the check above and now: journaled all the same, so it is built on
        # the next start, and the 2xx is a promise kept.
        receiver.note(
            logging.INFO, "%s: %s %s journaled for the next start", where, topic, change.id
        )
    else:
        receiver.note(
            logging.INFO, "%s: %s %s v%s queued", where, topic, change.id, change.version or "?"
        )
    return JSONResponse({"status": "queued", "change": change.as_dict()}, 202)


def status_report(receiver: Receiver) -> dict[str, Any]:
    """What /status shows; reads the journal, so call it off the event loop."""
    now = receiver.now()
    queue = receiver.queue.status()
    summary = receiver.journal.summary(STATUS_LIMIT)
    last = queue.last
    failing = last is not None and last.error is not None and queue.attempts > 0
    last_error = describe(last.error) if failing and last and last.error else None
    problems: list[str] = []
    if failing and last and isinstance(last.error, BuildFailedError):
        problems = list(last.error.details)
    if last_error is None:
        # Failures noted before a restart are in the journal.
        last_error = next((p.last_error for p in summary.first if p.last_error), None)
    oldest_age = None if summary.oldest is None else max(0.0, now - parse_iso(summary.oldest))
    return {
        **queue.as_dict(),
        "mode": receiver.mode,
        "target": receiver.target,
        "preview": receiver.preview,
        "verified": receiver.secret is not None,
        "space": None if receiver.space is None else f"{receiver.space}/{receiver.environment}",
        "journal": str(receiver.journal.path),
        "pending": {
            "count": summary.count,
            "oldest_age_seconds": None if oldest_age is None else round(oldest_age, 3),
            "changes": [pending.as_dict() for pending in summary.first],
        },
        "next_retry": None if queue.retry_in is None else _iso_seconds(now + queue.retry_in),
        "last_error": last_error,
        "problems": problems,
    }


def _iso_seconds(moment: float) -> str:
    return iso(moment)[:19] + "Z"


def health_report(receiver: Receiver) -> tuple[int, dict[str, Any]]:
    """/healthz: 503 when a change has waited longer than alert_after for a good build."""
    summary = receiver.journal.summary(1)
    if summary.oldest is None:
        return 200, {"ok": True}
    age = receiver.now() - parse_iso(summary.oldest)
    if age <= receiver.alert_after:
        return 200, {"ok": True}
    last_error = summary.first[0].last_error if summary.first else None
    reason = (
        f"{summary.count} change(s) pending; the oldest has waited {age:.0f} s for a successful "
        f"build (alert after {receiver.alert_after:.0f} s)"
        + (f"; last error: {last_error}" if last_error else "")
    )
    return 503, {"ok": False, "reason": reason, "pending": summary.count}


def create_app(receiver: Receiver) -> Starlette:
    """The receiver's routes: the webhook, a health check and the queue's status."""

    async def webhook(request: Request) -> Response:
        try:
            return await _accept(receiver, request)
        except Rejection as exc:
            receiver.note(
                logging.WARNING,
                "%s %s rejected (%d): %s; nothing queued",
                request.method,
                request.url.path,
                exc.status,
                exc.reason,
            )
            headers = {"Allow": "POST"} if exc.status == 405 else None
            # Refusing mid-body leaves the rest unread: the connection cannot carry another.
            if exc.status == 413:
                headers = {"Connection": "close"}
            return JSONResponse({"error": exc.reason}, exc.status, headers)

    async def healthz(request: Request) -> Response:
        code, body = await asyncio.to_thread(health_report, receiver)
        return JSONResponse(body, code)

    async def status(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(status_report, receiver))

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=ALL_METHODS),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
        ]
    )


def log_build(record: BuildRecord[Change, object]) -> None:
    """The one log line of a finished build: how it went, and what happens next."""
    title = summarise(record.changes)
    error = record.error
    if error is None:
        log.info(
            "build %d done in %.2f s: %s (%s)", record.number, record.duration, record.result, title
        )
        return
    if record.retry_in is not None:
        then = f"retry in {record.retry_in:.1f} s, at {_iso_seconds(time.time() + record.retry_in)}"
    elif record.held:
        then = f"its {len(record.changes)} change(s) wait for the next publish (not retried)"
    else:
        then = "it is retried with the changes that arrived meanwhile"
    sentence = describe(error)
    details = error.details if isinstance(error, BuildFailedError) else ()
    level = logging.WARNING if record.retry_in is not None else logging.ERROR
    log.log(
        level,
        "build %d failed (attempt %d): %s; %s%s",
        record.number,
        record.attempt,
        sentence,
        then,
        "".join(f"\n  {line}" for line in details if line not in sentence),
        # A bug of ours rather than the build's: its traceback is what a fix needs.
        exc_info=None if isinstance(error, HeadwaterError) else error,
    )


def settle_in(journal: Journal) -> Callable[[BuildRecord[Change, object]], None]:
    """A queue subscriber that removes a good build's changes from the journal (exactly the
    rows it covered) and notes a failed attempt on them."""

    def settle(record: BuildRecord[Change, object]) -> None:
        seqs = [change.seq for change in record.changes if change.seq is not None]
        if record.error is None:
            journal.complete(seqs)
        else:
            journal.note_attempt(seqs, describe(record.error))

    return settle


def require_secret(env: Mapping[str, str], insecure: bool) -> str | None:
    """The signing secret, None when verification is skipped; ConfigError when missing or too
    short to resist guessing."""
    secret = env.get(SECRET_ENV, "").strip()
    if secret:
        if len(secret) < MIN_SECRET:
            raise ConfigError(
                f"{SECRET_ENV} is {len(secret)} characters long; a signing secret needs at "
                f"least {MIN_SECRET}. Use the one Contentful generates in the webhook's "
                "settings (Secret request verification)."
            )
        return secret
    if insecure:
        log.warning("%sanyone who can reach this receiver can trigger builds", INSECURE)
        return None
    raise ConfigError(
        f"{SECRET_ENV} is not set: the receiver will not accept unverified webhooks. Set it to "
        "the signing secret of the space's webhook settings (or pass --insecure-skip-verify "
        "for a local experiment)."
    )


@contextlib.contextmanager
def _terminate_gracefully() -> Iterator[None]:
    """Let SIGTERM end the server like Ctrl-C but without killing the process after it.

    uvicorn shuts down on SIGTERM and then raises it again; with the default handler the
    process would die before the running build could finish.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Server(uvicorn.Server):
    """uvicorn, telling the receiver the moment a stop signal arrives, so that webhooks still
    in flight are refused (503, Contentful retries) rather than queued behind the shutdown."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


def run_receiver(
    receiver: Receiver,
    sock: socket.socket,
    *,
    announce: Callable[[str], None] | None = None,
    stop_timeout: float = STOP_TIMEOUT,
    on_timeout: Callable[[], None] | None = None,
) -> None:
    """Build what the journal holds, serve the receiver on sock until SIGTERM or Ctrl-C; then
    let a running build finish (up to stop_timeout seconds, then `on_timeout()`) and return.
    What is not built yet stays in the journal for the next start."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(receiver),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config, receiver.stopping)
    receiver.queue.subscribe(settle_in(receiver.journal))
    receiver.queue.subscribe(log_build)
    pending = [row.change for row in receiver.journal.pending()]
    if pending:
        log.info(
            "%d change(s) pending in %s from before the restart; building them now",
            len(pending),
            receiver.journal.path,
        )
        receiver.queue.restore(pending)
    receiver.queue.start()
    try:
        with _terminate_gracefully():
            if announce is not None:
                announce(f"http://{host}:{port}{WEBHOOK_PATH}")
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        receiver.stopping.set()
        if receiver.queue.status().state == "building":
            log.warning("waiting up to %.0f s for the running build to finish", stop_timeout)
        if not receiver.queue.stop(stop_timeout):
            log.warning("the build is still running after %.0f s; stopping it", stop_timeout)
            if on_timeout is not None:
                on_timeout()
            receiver.queue.stop(stop_timeout)
        left = len(receiver.journal.pending())
        if left:
            log.info(
                "%d change(s) stay pending in %s for the next start", left, receiver.journal.path
            )
