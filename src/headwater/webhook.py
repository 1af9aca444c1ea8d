"""The webhook receiver: verify Contentful's webhooks, keep those that alter the site, and hand
them to the rebuild queue, whose build runs `headwater build` or calls Netlify's build hook.

Answers: 202 queued; 200 acknowledged but ignored (a topic that cannot change the site, or a
repeated delivery); 400 malformed; 401 unsigned, malformed or expired signature headers (no
usable credentials); 403 a signature that does not match (tampered, or another secret); 405
any method but POST; 413 a body over 1 MiB, refused from Content-Length or while streaming.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from headwater.coalesce import BuildRecord, RebuildQueue
from headwater.errors import BuildFailedError, ConfigError, HeadwaterError, SourceError
from headwater.signature import TTL, SignatureError, check_freshness, verify_request

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/contentful"
SECRET_ENV = "CONTENTFUL_WEBHOOK_SECRET"
CHANGES_ENV = "HEADWATER_CHANGES"
"""The environment variable a `--build` build finds the changes in, as a JSON list."""
MAX_BODY = 1024 * 1024
IDEMPOTENCY_HEADER = "x-contentful-idempotency-key"
TOPIC_HEADER = "x-contentful-topic"
REMEMBERED_KEYS = 10_000
QUIET = 5.0
MAX_DELAY = 60.0
STOP_TIMEOUT = 120.0
"""Seconds a running build may take to finish after SIGTERM before it is stopped."""
BUILD_TIMEOUT = 1800.0
FORWARD_TIMEOUT = 30.0
INSECURE = "[INSECURE: signatures not verified] "
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

PUBLISHED_ACTIONS = frozenset({"publish", "unpublish", "delete", "archive"})
"""Entry and asset actions that change what the Delivery API serves."""
DRAFT_ACTIONS = frozenset({"create", "save", "auto_save", "unarchive"})
"""Actions only a preview site shows."""


@dataclass(frozen=True)
class Change:
    """One change a webhook announced: what it touched, at which version, and why."""

    kind: str
    """Entry, Asset or ContentType (a content-type change means a full build)."""
    id: str
    topic: str
    version: int | None = None
    title: str | None = None

    @property
    def action(self) -> str:
        return self.topic.rsplit(".", 1)[-1]

    @property
    def full(self) -> bool:
        return self.kind == "ContentType"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "version": self.version,
            "topic": self.topic,
            "title": self.title,
        }


def changes_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """The changes in a stable order, as the build and Netlify's hook body receive them."""
    ordered = sorted(changes, key=lambda c: (c.kind, c.id, c.version or 0, c.topic))
    return [change.as_dict() for change in ordered]


def classify(topic: str, *, preview: bool) -> str | None:
    """The kind of change a topic queues, or None when it cannot change the site."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "ContentManagement":
        return None
    _, kind, action = parts
    if kind == "ContentType":
        return kind
    if kind in ("Entry", "Asset") and (
        action in PUBLISHED_ACTIONS or (preview and action in DRAFT_ACTIONS)
    ):
        return kind
    return None


def _first_text(value: object) -> str | None:
    """A field's text: the value itself, or the en-US (else first) locale's."""
    if isinstance(value, dict):
        value = value.get("en-US", next(iter(value.values()), None))
    return value if isinstance(value, str) and value.strip() else None


def parse_change(kind: str, topic: str, payload: object, *, preview: bool) -> Change:
    """The change a webhook payload describes; ValueError if it has no sys.id."""
    if not isinstance(payload, dict) or not isinstance(payload.get("sys"), dict):
        raise ValueError("the payload has no sys object")
    sys_ = payload["sys"]
    entity_id = sys_.get("id")
    if not isinstance(entity_id, str) or not entity_id:
        raise ValueError("the payload has no sys.id")
    # The Delivery API reports a published entry's sys.revision; drafts only have sys.version.
    keys = ("version",) if preview else ("revision", "publishedVersion", "version")
    version = next((sys_[key] for key in keys if isinstance(sys_.get(key), int)), None)
    fields = payload.get("fields")
    title = None
    if isinstance(fields, dict):
        title = _first_text(fields.get("title")) or _first_text(fields.get("name"))
    return Change(kind=kind, id=entity_id, topic=topic, version=version, title=title)


def summarise(changes: Iterable[Change], *, limit: int = 3) -> str:
    """One line for Netlify's deploy log: "Contentful: 3 entries published — A, B, C, …"."""
    ordered = changes_json(changes)
    groups: dict[tuple[str, str], int] = {}
    for change in ordered:
        key = (change["kind"], change["topic"].rsplit(".", 1)[-1])
        groups[key] = groups.get(key, 0) + 1
    nouns = {"Entry": ("entry", "entries"), "Asset": ("asset", "assets")}
    parts = []
    for (kind, action), count in groups.items():
        if kind == "ContentType":
            parts.append(f"content model {action} (full build)")
            continue
        one, many = nouns.get(kind, (kind.lower(), kind.lower() + "s"))
        done = {"auto_save": "auto-saved", "save": "saved", "create": "created"}.get(
            action, action + ("d" if action.endswith("e") else "ed")
        )
        parts.append(f"{count} {one if count == 1 else many} {done}")
    titles = list(dict.fromkeys(c["title"] for c in ordered if c["title"]))
    text = "Contentful: " + (", ".join(parts) or "no changes")
    if titles:
        text += " — " + ", ".join(titles[:limit]) + (", …" if len(titles) > limit else "")
    return text if len(text) <= 250 else text[:249] + "…"


class RecentKeys:
    """The last `size` idempotency keys seen, so a redelivered webhook counts once."""

    def __init__(self, size: int = REMEMBERED_KEYS) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str) -> bool:
        """Remember key; False if it was already remembered."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


@dataclass
class Receiver:
    """What the receiver's routes share: the secret (None: verification skipped), the
    queue its builds run from, and the idempotency keys it has seen."""

    queue: RebuildQueue[Change, object]
    secret: str | None
    preview: bool = False
    mode: str = "build"
    max_body: int = MAX_BODY
    ttl: float = TTL
    now: Callable[[], float] = time.time
    keys: RecentKeys = field(default_factory=RecentKeys)

    def note(self, level: int, message: str, *args: object) -> None:
        """A request log line; every one says so when signatures are not verified."""
        log.log(level, (INSECURE if self.secret is None else "") + message, *args)


class _Rejection(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_length(request: Request, limit: int) -> None:
    """Refuse (413) a body whose declared length passes limit, before reading any of it."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise _Rejection(400, f"malformed Content-Length {length[:20]!r}")
        if int(length) > limit:
            raise _Rejection(413, f"body of {int(length)} bytes declared (limit {limit})")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes limit, before the rest is read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Rejection(413, f"body passed {limit} bytes while streaming")
        chunks.append(chunk)
    return b"".join(chunks)


def _target(request: Request) -> str:
    """The request target as it came on the wire: the path as sent, and the query."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")


async def _accept(receiver: Receiver, request: Request) -> Response:
    where = f"{request.method} {request.url.path}"
    if request.method != "POST":
        raise _Rejection(405, f"method {request.method} not allowed")
    _check_length(request, receiver.max_body)
    headers = dict(request.headers.items())
    if receiver.secret is not None:
        try:
            check_freshness(headers, now=receiver.now(), ttl=receiver.ttl)
        except SignatureError as exc:
            raise _Rejection(exc.status, exc.reason) from None
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
            raise _Rejection(exc.status, exc.reason) from None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Rejection(400, f"the body is not JSON: {exc}") from None
    topic = request.headers.get(TOPIC_HEADER, "").strip()
    if not topic:
        raise _Rejection(400, "no X-Contentful-Topic header")
    kind = classify(topic, preview=receiver.preview)
    change = None
    if kind is not None:
        try:
            change = parse_change(kind, topic, payload, preview=receiver.preview)
        except ValueError as exc:
            raise _Rejection(400, str(exc)) from None
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if key and not receiver.keys.add(key):
        receiver.note(
            logging.INFO, "%s: %s repeated (idempotency key %s); ignored", where, topic, key
        )
        return JSONResponse({"status": "duplicate", "topic": topic}, 200)
    if change is None:
        receiver.note(logging.INFO, "%s: %s cannot change the site; ignored", where, topic)
        return JSONResponse({"status": "ignored", "topic": topic}, 200)
    if not receiver.queue.submit(change):
        raise _Rejection(503, "shutting down; not queued")
    receiver.note(
        logging.INFO, "%s: %s %s v%s queued", where, topic, change.id, change.version or "?"
    )
    return JSONResponse({"status": "queued", "change": change.as_dict()}, 202)


def create_app(receiver: Receiver) -> Starlette:
    """The receiver's routes: the webhook, a health check and the queue's status."""

    async def webhook(request: Request) -> Response:
        try:
            return await _accept(receiver, request)
        except _Rejection as exc:
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

    def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def status(request: Request) -> Response:
        return JSONResponse(
            {
                **receiver.queue.status().as_dict(),
                "mode": receiver.mode,
                "preview": receiver.preview,
                "verified": receiver.secret is not None,
            }
        )

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=ALL_METHODS),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
        ]
    )


class SubprocessBuilder:
    """Builds in a child `python -m headwater build`, then runs the deploy command, if any.

    A crash or non-zero exit raises BuildFailedError; the receiver carries on, and the live
    output stays the last good one because a build swaps it in atomically.
    """

    def __init__(
        self,
        project: Path,
        *,
        preview: bool = False,
        deploy_command: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = BUILD_TIMEOUT,
    ) -> None:
        self._project = project
        self._preview = preview
        self._deploy = deploy_command
        self._env = dict(os.environ if env is None else env)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: subprocess.Popen[str] | None = None

    def command(self, changes: frozenset[Change]) -> list[str]:
        command = [sys.executable, "-m", "headwater", "--project", str(self._project), "build"]
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
        # A session of its own: Ctrl-C in the terminal stops the receiver, which then lets
        # the build finish rather than have it interrupted too.
        with subprocess.Popen(
            command,
            shell=shell,
            env=env,
            cwd=self._project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        ) as process:
            with self._lock:
                self._running = process
            try:
                output, _ = process.communicate(timeout=self._timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                raise BuildFailedError(f"{what} took more than {self._timeout:.0f} s") from None
            finally:
                with self._lock:
                    self._running = None
        lines = output.strip().splitlines()
        for line in lines:
            log.info("%s: %s", what, line)
        if process.returncode != 0:
            how = (
                f"was killed by signal {-process.returncode}"
                if process.returncode < 0
                else f"exited with status {process.returncode}"
            )
            tail = " | ".join(lines[-5:])
            raise BuildFailedError(f"{what} {how}" + (f": {tail}" if tail else ""))

    def terminate(self) -> None:
        """Stop a running build (after the shutdown grace period)."""
        with self._lock:
            if self._running is not None and self._running.poll() is None:
                self._running.terminate()


class Forwarder:
    """Calls Netlify's build hook once per batch, titled with what changed."""

    def __init__(
        self, url: str, session: requests.Session | None = None, timeout: float = FORWARD_TIMEOUT
    ) -> None:
        self._url = url
        self._session = session or requests.Session()
        self._timeout = timeout

    def __call__(self, changes: frozenset[Change]) -> str:
        title = summarise(changes)
        body = {"source": "headwater", "changes": changes_json(changes)}
        try:
            response = self._session.post(
                self._url, params={"trigger_title": title}, json=body, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise SourceError(f"the build hook could not be reached: {exc}") from exc
        if response.status_code >= 400:
            raise SourceError(f"the build hook answered {response.status_code}")
        return f"forwarded: {title}"

    def close(self) -> None:
        self._session.close()


def log_build(record: BuildRecord[Change, object]) -> None:
    """One log line per finished build."""
    title = summarise(record.changes)
    if record.error is None:
        log.info("build %d done in %.2f s (%s)", record.number, record.duration, title)
    elif isinstance(record.error, HeadwaterError):
        log.error("build %d failed: %s (%s)", record.number, record.error, title)
    else:
        log.error("build %d crashed (%s)", record.number, title, exc_info=record.error)


def require_secret(env: Mapping[str, str], insecure: bool) -> str | None:
    """The signing secret, None when verification is skipped; ConfigError when missing."""
    secret = env.get(SECRET_ENV, "").strip()
    if secret:
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


def run_receiver(
    receiver: Receiver,
    sock: socket.socket,
    *,
    announce: Callable[[str], None] | None = None,
    stop_timeout: float = STOP_TIMEOUT,
    on_timeout: Callable[[], None] | None = None,
) -> None:
    """Serve the receiver on sock until SIGTERM or Ctrl-C; then let a running build finish
    (up to stop_timeout seconds, then `on_timeout()`) and return."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(receiver),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    receiver.queue.subscribe(log_build)
    receiver.queue.start()
    try:
        with _terminate_gracefully():
            if announce is not None:
                announce(f"http://{host}:{port}{WEBHOOK_PATH}")
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        if receiver.queue.status().state == "building":
            log.warning("waiting up to %.0f s for the running build to finish", stop_timeout)
        if not receiver.queue.stop(stop_timeout):
            log.warning("the build is still running after %.0f s; stopping it", stop_timeout)
            if on_timeout is not None:
                on_timeout()
            receiver.queue.stop(stop_timeout)
