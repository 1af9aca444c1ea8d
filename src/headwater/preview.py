"""The editors' live draft preview: a long-running server that shows drafts seconds after a save.

It builds the preview site once (Contentful's Preview API), then takes Contentful's signed
webhooks for save, auto_save, publish, unpublish, archive and delete (checked exactly as the
receiver checks them), fetches only the changed entries by id into its preview store, and
rebuilds — in proportion to the change, through the site index — then tells every open preview
tab to reload (the dev server's live reload).

The preview site is not public: every page needs the preview secret. The entry editor's "Open
preview" link carries it (`/__preview/entry/<id>?secret=…`); that sets a cookie (HttpOnly,
SameSite=Lax, Secure on https) and sends the editor to the entry's page. Every response says
`X-Robots-Tag: noindex`, and every page carries the draft banner and `noindex` of a preview
build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from headwater.changes import Change, classify, parse_change
from headwater.coalesce import BuildRecord, RebuildQueue
from headwater.serve import (
    EVENTS_URL,
    NO_CACHE,
    RELOAD_JS,
    RELOAD_SCRIPT_URL,
    DevServer,
    LiveReload,
    serve_path,
)
from headwater.webhook import (
    ALL_METHODS,
    TOPIC_HEADER,
    WEBHOOK_PATH,
    Rejection,
    Verifier,
    check_origin,
    verified_payload,
)

log = logging.getLogger(__name__)

SECRET_ENV = "HEADWATER_PREVIEW_SECRET"
MIN_SECRET = 32
COOKIE = "headwater_preview"
ENTRY_PATH = "/__preview/entry/{entry_id}"
QUIET = 0.2
"""Seconds without a new save before the preview rebuilds: an editor's typing comes in bursts
of auto_saves, and each rebuild takes a fraction of a second."""
MAX_DELAY = 2.0
ROBOTS = {"X-Robots-Tag": "noindex, nofollow"}

DENIED_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Draft preview</title></head><body>
<h1>This is the clinic's draft preview</h1>
<p>It shows unpublished drafts, so it is not open to everyone. Open it from the entry editor
in Contentful (the <strong>Open preview</strong> button), which signs you in here.</p>
</body></html>
"""


@dataclass(frozen=True)
class Access:
    """Who may see the preview: whoever holds the secret (once, in a URL) or its cookie."""

    secret: str = field(repr=False)

    @property
    def token(self) -> str:
        """The cookie's value: derived from the secret, so the secret itself never travels
        again after the first request."""
        return hmac.new(self.secret.encode(), b"headwater-preview", hashlib.sha256).hexdigest()

    def allows(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.token.encode())

    def opens(self, request: Request) -> bool:
        given = request.query_params.get("secret", "")
        return hmac.compare_digest(given.encode(), self.secret.encode())


@dataclass
class PreviewService:
    """What the preview server's routes share."""

    out_dir: Path
    access: Access
    verifier: Verifier
    queue: RebuildQueue[Change, object]
    live: LiveReload
    entry_url: Callable[[str], str | None]
    """The page of an entry, by id (None: it has no page, or is not in the preview)."""
    space: str | None = None
    environment: str = "master"
    requests: int = 0


def create_app(service: PreviewService) -> Starlette:
    """The webhook (signed), the entry links editors open, live reload, then the site."""

    async def webhook(request: Request) -> Response:
        try:
            payload = await verified_payload(service.verifier, request)
            topic = request.headers.get(TOPIC_HEADER, "").strip()
            if not topic:
                raise Rejection(400, "no X-Contentful-Topic header")
            check_origin(payload, service.space, service.environment)
            kind = classify(topic, preview=True)
            if kind is None:
                return JSONResponse({"status": "ignored", "topic": topic}, 200)
            try:
                change = parse_change(kind, topic, payload, preview=True)
            except ValueError as exc:
                raise Rejection(400, str(exc)) from None
        except Rejection as exc:
            log.warning(
                "%s %s rejected (%d): %s", request.method, request.url.path, exc.status, exc.reason
            )
            return JSONResponse({"error": exc.reason}, exc.status)
        service.queue.submit(change)
        log.info("%s %s v%s: the preview will show it", topic, change.id, change.version or "?")
        return JSONResponse({"status": "queued", "change": change.as_dict()}, 202)

    def entry(request: Request) -> Response:
        if not (service.access.opens(request) or service.access.allows(request)):
            return _denied()
        url = service.entry_url(request.path_params["entry_id"]) or "/"
        response = RedirectResponse(url, status_code=303, headers={**NO_CACHE, **ROBOTS})
        response.set_cookie(
            COOKIE,
            service.access.token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    def page(request: Request) -> Response:
        if not service.access.allows(request):
            return _denied()
        build = service.live.state.build
        response = serve_path(service.out_dir, request.scope["path"], request.url.query, build)
        response.headers.update(ROBOTS)
        return response

    def script(request: Request) -> Response:
        if not service.access.allows(request):
            return _denied()
        return Response(RELOAD_JS, headers={**NO_CACHE, **ROBOTS}, media_type="text/javascript")

    async def events(request: Request) -> Response:
        if not service.access.allows(request):
            return _denied()
        return StreamingResponse(
            service.live.events(), headers={**NO_CACHE, **ROBOTS}, media_type="text/event-stream"
        )

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=ALL_METHODS),
            Route(ENTRY_PATH, entry),
            Route(RELOAD_SCRIPT_URL, script),
            Route(EVENTS_URL, events),
            Route("/{path:path}", page),
        ]
    )


def _denied() -> Response:
    return Response(DENIED_HTML, 401, {**NO_CACHE, **ROBOTS}, "text/html")


def preview_build(
    apply: Callable[[frozenset[Change]], None], build: Callable[[], Any]
) -> Callable[[frozenset[Change]], Any]:
    """The preview's rebuild: bring the changed entries into the preview store, then build."""

    def run(changes: frozenset[Change]) -> Any:
        started = time.perf_counter()
        apply(changes)
        report = build()
        log.info(
            "preview rebuilt for %d change(s) in %.0f ms",
            len(changes),
            (time.perf_counter() - started) * 1000,
        )
        return report

    return run


def run_preview(
    service: PreviewService,
    sock: socket.socket,
    *,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the preview until Ctrl-C or SIGTERM; tabs reload after every good build."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(service), host=host, port=port, lifespan="off", log_config=None
    )
    server = DevServer(config, service.live)
    service.queue.subscribe(service.live.record)
    service.queue.start()
    try:
        if announce is not None:
            announce(f"http://{host}:{port}")
        server.run(sockets=[sock])
    finally:
        service.queue.stop(30.0)
        service.live.close()


def require_secret(env: Mapping[str, str]) -> str:
    """The preview's access secret; ConfigError when missing or too short to be one."""
    from headwater.errors import ConfigError

    secret = env.get(SECRET_ENV, "").strip()
    if len(secret) < MIN_SECRET:
        raise ConfigError(
            f"{SECRET_ENV} must be set to a random secret of at least {MIN_SECRET} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`): it is "
            "what keeps the drafts private"
        )
    return secret


def preview_dir(project: Path) -> Path:
    """Where the preview service builds its site: a folder of its own, never public/."""
    return project / ".cache" / "headwater" / "preview" / "site"


def serve_preview(
    project: Path,
    sock: socket.socket,
    env: Mapping[str, str],
    *,
    public_url: str | None = None,
    announce: Callable[[str], None] | None = None,
    quiet: float = QUIET,
) -> None:
    """`headwater preview`: check the configuration, build the preview once (every draft the
    Preview API shows), then serve it and keep it up to date from Contentful's webhooks."""
    from headwater.build import build, prime_spare
    from headwater.buildinputs import siteindex_path
    from headwater.config import make_options
    from headwater.contentful.settings import ContentfulSettings
    from headwater.contentful.sync import fetch_by_id
    from headwater.schema import load_model
    from headwater.serve import site_url
    from headwater.siteindex import SiteIndex
    from headwater.webhook import require_secret as require_webhook_secret

    settings = ContentfulSettings.from_env(env, preview=True)
    secret = require_secret(env)
    webhook_secret = require_webhook_secret(env, insecure=False)
    assert webhook_secret is not None
    options = make_options(
        root=project,
        out=str(preview_dir(project)),
        base_url=public_url or env.get("HEADWATER_PREVIEW_URL") or site_url(sock),
        source="contentful",
        preview=True,
        full=False,
        env={},
    )
    offline = dataclasses.replace(options, offline=True)
    report = build(options)
    log.info("the preview shows %d pages, built in %.2f s", report.pages, report.seconds)
    prime_spare(options)  # so that the first save, too, writes only what it changes

    def apply(changes: frozenset[Change]) -> None:
        model = load_model(options.project.schema_dir)
        if any(change.full for change in changes):
            build(dataclasses.replace(options, full=True))
            return
        made = fetch_by_id(
            settings,
            cache_dir=options.project.cache_dir,
            model_types=set(model.types),
            model_digest=model.digest,
            entries=[c.id for c in changes if c.kind == "Entry"],
            assets=[c.id for c in changes if c.kind == "Asset"],
        )
        service.requests += made

    def entry_url(entry_id: str) -> str | None:
        index = SiteIndex(siteindex_path(options.project, options.out_dir))
        try:
            state = index.state()
        finally:
            index.close()
        found = state.entries.get(entry_id) if state is not None else None
        return found.url if found is not None else None

    queue: RebuildQueue[Change, object] = RebuildQueue(
        preview_build(apply, lambda: build(offline)),
        quiet=quiet,
        max_delay=MAX_DELAY,
        name="preview-builds",
    )
    live = LiveReload()
    live.record(_first_record())
    service = PreviewService(
        out_dir=options.out_dir,
        access=Access(secret),
        verifier=Verifier(webhook_secret),
        queue=queue,
        live=live,
        entry_url=entry_url,
        space=settings.space,
        environment=settings.environment,
    )
    run_preview(service, sock, announce=announce)


def _first_record() -> BuildRecord[Change, object]:
    """The first build, done before the server starts: tabs opened now show build 1."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return BuildRecord(0, frozenset(), now, now, 0.0, None, None)
