"""The dev server: serve the last good build with live reload, and rebuild on every edit."""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import socket
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import watchfiles
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from headwater.coalesce import BuildRecord, RebuildQueue
from headwater.config import BuildOptions
from headwater.errors import ConfigError, ContentError, HeadwaterError
from headwater.model import short_repr
from headwater.redirects import parse_redirects
from headwater.schema import load_model

log = logging.getLogger(__name__)

RELOAD_SCRIPT_URL = "/__headwater/reload.js"
EVENTS_URL = "/__headwater/events"
QUIET = 0.1
"""Seconds without a new edit before a rebuild: an editor's save touches a file or two at once."""
MAX_DELAY = 2.0
KEEPALIVE = 15.0
"""Seconds between comments on an idle event stream, so a vanished client is noticed."""
STOP_TIMEOUT = 10.0
NO_CACHE = {"Cache-Control": "no-cache"}
INITIAL_CHANGE = "(start)"

# The client half of live reload. Each page carries the number of the good build it came from
# (data-build): a page that missed a build while loading reloads as soon as its stream opens.
RELOAD_JS = """\
// headwater dev server: reload after a good build; show why a build failed.
(() => {
  "use strict";
  const script = document.currentScript;
  const pageBuild = script ? script.dataset.build : undefined;
  const overlayId = "headwater-overlay";
  const events = new EventSource("/__headwater/events");

  function hide() {
    const overlay = document.getElementById(overlayId);
    if (overlay) overlay.remove();
  }

  function add(parent, tag, text, style) {
    const element = document.createElement(tag);
    if (text !== undefined) element.textContent = text;
    Object.assign(element.style, style || {});
    parent.append(element);
    return element;
  }

  function show(state) {
    hide();
    const panel = document.createElement("div");
    panel.id = overlayId;
    panel.setAttribute("role", "alertdialog");
    panel.setAttribute("aria-modal", "true");
    panel.setAttribute("aria-labelledby", overlayId + "-title");
    Object.assign(panel.style, {
      position: "fixed", inset: "0", zIndex: "2147483647", overflow: "auto",
      boxSizing: "border-box", padding: "2rem", margin: "0",
      background: "rgba(24, 24, 27, 0.98)", color: "#fafafa",
      font: "16px/1.5 system-ui, sans-serif", textAlign: "left",
    });
    const close = add(panel, "button", "Close", {
      position: "absolute", top: "1rem", right: "1rem", padding: "0.3rem 0.8rem",
      font: "inherit", color: "#fafafa", background: "#3f3f46", border: "1px solid #71717a",
      borderRadius: "0.3rem", cursor: "pointer",
    });
    close.type = "button";
    close.id = overlayId + "-close";
    close.setAttribute("aria-label", "Close (Escape)");
    close.title = "Close (Escape); the next build shows it again if it fails";
    close.addEventListener("click", hide);
    const title = add(panel, "h2", "The build failed",
      { margin: "0 0 0.5rem", color: "#fca5a5", font: "bold 1.5rem/1.3 system-ui, sans-serif" });
    title.id = overlayId + "-title";
    add(panel, "p", "The last good build is still served underneath. Fix the problem and save: " +
      "this page reloads as soon as a build succeeds.", { margin: "0 0 1.5rem" });
    const mono = { fontFamily: "ui-monospace, monospace" };
    if (state.problems.length) {
      const table = add(panel, "table", undefined, { borderCollapse: "collapse", width: "100%" });
      const head = add(add(table, "thead"), "tr");
      for (const name of ["File", "Field", "Rule", "Problem"]) {
        add(head, "th", name, { textAlign: "left", padding: "0.4rem 0.8rem 0.4rem 0",
          borderBottom: "1px solid #52525b" });
      }
      const body = add(table, "tbody");
      for (const problem of state.problems) {
        const row = add(body, "tr");
        const cell = { padding: "0.4rem 0.8rem 0.4rem 0", verticalAlign: "top",
          borderBottom: "1px solid #3f3f46", color: "inherit" };
        const name = Object.assign({ whiteSpace: "nowrap" }, cell, mono);
        add(row, "td", problem.file, name);
        add(row, "td", problem.field, name);
        add(row, "td", problem.rule, name);
        add(row, "td", problem.message, Object.assign({ overflowWrap: "anywhere" }, cell));
      }
    } else {
      add(panel, "pre", state.error,
        Object.assign({ whiteSpace: "pre-wrap", overflowWrap: "anywhere", margin: "0" }, mono));
    }
    document.body.append(panel);
    close.focus();
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hide();
  });

  events.addEventListener("state", (event) => {
    const state = JSON.parse(event.data);
    if (pageBuild !== undefined && String(state.build) !== pageBuild) {
      events.close();
      location.reload();
    } else if (state.ok) {
      hide();
    } else {
      show(state);
    }
  });
})();
"""

NOT_FOUND_HTML = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p>Nothing is published at this address.</p></body>
</html>
"""


@dataclass(frozen=True)
class SiteState:
    """What open pages need to know: the number of the good build being served, and why the
    latest build failed, if it did."""

    build: int
    ok: bool = True
    error: str = ""
    problems: tuple[dict[str, str], ...] = ()

    def event(self) -> str:
        """This state as one server-sent event."""
        data = json.dumps(
            {"build": self.build, "ok": self.ok, "error": self.error, "problems": self.problems}
        )
        return f"event: state\ndata: {data}\n\n"


def describe_failure(error: Exception) -> tuple[str, tuple[dict[str, str], ...]]:
    """The overlay's text for a failed build: every content problem, else the error."""
    if isinstance(error, ContentError):
        problems = tuple(
            {
                "file": problem.origin,
                "field": problem.field,
                "rule": problem.rule,
                "message": problem.message
                if problem.value is None
                else f"{problem.message} (got {short_repr(problem.value)})",
            }
            for problem in error.problems
        )
        return str(error), problems
    if isinstance(error, HeadwaterError):
        return str(error), ()
    # An error the engine did not expect; Jinja's and Python's syntax errors know where.
    where = getattr(error, "filename", None)
    line = getattr(error, "lineno", None)
    if where and line:
        where = f"{where}, line {line}"
    return f"{type(error).__name__}: {error}" + (f" ({where})" if where else ""), ()


class LiveReload:
    """The served build's state, shared by the build thread, page requests and event streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = SiteState(build=0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[asyncio.Queue[SiteState | None]] = set()
        self._closed = False

    @property
    def state(self) -> SiteState:
        with self._lock:
            return self._state

    def record(self, record: BuildRecord[Any, Any]) -> None:
        """Take a finished build (on the build thread) and tell every open page."""
        with self._lock:
            if record.error is None:
                self._state = SiteState(build=self._state.build + 1)
            else:
                error, problems = describe_failure(record.error)
                self._state = SiteState(self._state.build, ok=False, error=error, problems=problems)
            if self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._broadcast, self._state)
                except RuntimeError:  # the loop closed without shutting the server down
                    self._loop = None

    def _broadcast(self, state: SiteState) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put_nowait(state)

    async def events(self) -> AsyncIterator[str]:
        """One page's event stream: the current state at once, then every change of it."""
        stream: asyncio.Queue[SiteState | None] = asyncio.Queue()
        with self._lock:
            if self._closed:
                return
            self._loop = asyncio.get_running_loop()
            self._streams.add(stream)
            state = self._state
        try:
            yield "retry: 1000\n\n" + state.event()
            while True:
                try:
                    item = await asyncio.wait_for(stream.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    return
                yield item.event()
        finally:
            with self._lock:
                self._streams.discard(stream)

    def close(self) -> None:
        """End every event stream (on the server's loop), so shutdown need not wait for them."""
        with self._lock:
            self._closed = True
            self._loop = None
            streams = list(self._streams)
        for stream in streams:
            stream.put_nowait(None)


def inject_reload(html: bytes, build: int) -> bytes:
    """The page with the reload script before its last </body> (or at its end)."""
    tag = f'<script src="{RELOAD_SCRIPT_URL}" data-build="{build}"></script>'.encode()
    at = html.lower().rfind(b"</body>")
    return html + tag if at < 0 else html[:at] + tag + html[at:]


def find_file(out_dir: Path, url_path: str) -> Path | None:
    """The file a pretty URL is served from, as Netlify does: /x/ from x/index.html."""
    parts = [part for part in url_path.split("/") if part]
    if any(part in (".", "..") or "\\" in part or "\x00" in part for part in parts):
        return None
    path = out_dir.joinpath(*parts)
    if url_path.endswith("/") or not parts:
        path = path / "index.html"
    return path if path.is_file() and path.resolve().is_relative_to(out_dir) else None


def serve_path(out_dir: Path, url_path: str, query: str, build: int) -> Response:
    """A response for url_path from the built site, as Netlify serves it: files first, then
    the rules of `_redirects` (301/302 to their target, 404/410 with their page), then the 404
    page. HTML gets the reload script."""
    path = find_file(out_dir, url_path)
    if path is None and not url_path.endswith("/") and find_file(out_dir, url_path + "/"):
        return RedirectResponse(url_path + "/" + (f"?{query}" if query else ""), status_code=307)
    status = 200
    if path is None:
        rule = _redirect_rule(out_dir, url_path)
        if rule is not None and rule[1] in (301, 302, 303, 307, 308):
            return RedirectResponse(rule[0], status_code=rule[1])
        if rule is not None and find_file(out_dir, rule[0]) is not None:
            status, path = rule[1], find_file(out_dir, rule[0])
    if path is None:
        status = 404
        path = out_dir / "404.html"
    try:
        body = path.read_bytes()
    except OSError:  # no 404 page yet, or a rebuild swapped the file away mid-request
        return Response(inject_reload(NOT_FOUND_HTML.encode(), build), 404, NO_CACHE, "text/html")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type == "text/html":
        body = inject_reload(body, build)
    return Response(body, status, NO_CACHE, media_type)


def _redirect_rule(out_dir: Path, url_path: str) -> tuple[str, int] | None:
    """The `_redirects` rule for a path (with or without its trailing slash, as Netlify)."""
    try:
        rules = parse_redirects((out_dir / "_redirects").read_text(encoding="utf-8"))
    except OSError:
        return None
    if url_path in rules:
        return rules[url_path]
    other = url_path[:-1] if url_path.endswith("/") else url_path + "/"
    return rules.get(other)


def create_app(out_dir: Path, live: LiveReload) -> Starlette:
    """The dev server's routes: the reload script, the event stream, then the site."""

    def page(request: Request) -> Response:
        # Read the build number before the file: a page newer than its number reloads once
        # more, where the other order could leave a page older than its number.
        build = live.state.build
        return serve_path(out_dir, request.scope["path"], request.url.query, build)

    def script(request: Request) -> Response:
        return Response(RELOAD_JS, headers=NO_CACHE, media_type="text/javascript")

    async def events(request: Request) -> Response:
        return StreamingResponse(live.events(), headers=NO_CACHE, media_type="text/event-stream")

    return Starlette(
        routes=[
            Route(RELOAD_SCRIPT_URL, script),
            Route(EVENTS_URL, events),
            Route("/{path:path}", page),
        ]
    )


class DevServer(uvicorn.Server):
    """uvicorn, ending the open event streams first so that shutdown does not wait on them."""

    def __init__(self, config: uvicorn.Config, live: LiveReload) -> None:
        super().__init__(config)
        self.live = live

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.live.close()
        await super().shutdown(sockets)


def serve_folder(project_root: Path) -> Path:
    """Where the dev server builds: a folder of its own in the project's cache, so that
    public/ keeps what `headwater build` made (with the real base URL) and stays deployable."""
    return project_root / ".cache" / "headwater" / "serve" / "site"


def check_configuration(options: BuildOptions, env: Mapping[str, str]) -> None:
    """What a build would refuse before reading any content, refused before serving: the
    content model, the content folder, the CMS's settings (ConfigError, exit 2). Content
    problems are not refused here: the server shows them over the page until fixed."""
    load_model(options.project.schema_dir)
    if options.source == "contentful":
        # Imported here: only a dev server on Contentful needs the CMS's settings.
        from headwater.contentful.settings import ContentfulSettings

        ContentfulSettings.from_env(env, preview=options.preview)
    elif not options.project.content_dir.is_dir():
        raise ConfigError(
            f"{options.project.content_dir} is not a folder: nothing to build from "
            "(--project names the folder holding content/, templates/ and cms_schema/)"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one), or ConfigError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def site_url(sock: socket.socket) -> str:
    """The base URL pages are served at from sock, without a trailing slash."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "localhost"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def is_output(path: Path, out_dir: Path) -> bool:
    """True for the output folder and the writer's working folders beside it (.public.*)."""
    working = f".{out_dir.name}."
    return path.is_relative_to(out_dir) or any(part.startswith(working) for part in path.parts)


def watch_project(
    options: BuildOptions, submit: Callable[[str], object], stop: threading.Event
) -> None:
    """Submit every changed path below the project's source folders until stop is set."""
    project = options.project
    folders = [
        folder
        for folder in (
            project.content_dir,
            project.templates_dir,
            project.static_dir,
            project.schema_dir,
        )
        if folder.is_dir()
    ]
    if not folders:
        log.warning("no content/, templates/, static/ or cms_schema/ to watch in %s", project.root)
        return
    log.info("watching %s", ", ".join(f"{folder.name}/" for folder in folders))
    try:
        for changes in watchfiles.watch(*folders, stop_event=stop, raise_interrupt=False):
            for _, name in sorted(changes):
                path = Path(name)
                if is_output(path, options.out_dir):
                    continue
                submit(path.relative_to(project.root).as_posix())
    except Exception:
        log.exception("watching the project failed; edits will not rebuild the site")


def log_build(record: BuildRecord[str, object]) -> None:
    """One log line per build: what started it and how it ended."""
    changes = sorted(record.changes)
    cause = changes[0] + (f" and {len(changes) - 1} more" if len(changes) > 1 else "")
    error = record.error
    if error is None:
        rendered = getattr(record.result, "rendered", None)
        done = "rebuilt" if rendered is None else f"rebuilt {rendered} page{'s' * (rendered != 1)}"
        took = f"in {round(record.duration * 1000)} ms"
        if INITIAL_CHANGE in record.changes:
            log.info("%s %s", done.removeprefix("re"), took)
        else:
            log.info("%s %s (%s)", done, took, cause)
    elif isinstance(error, ContentError):
        problems = "".join(f"\n  {problem}" for problem in error.problems)
        log.warning("build %d (%s) failed: %s%s", record.number, cause, error, problems)
    elif isinstance(error, HeadwaterError):
        log.warning("build %d (%s) failed: %s", record.number, cause, error)
    else:
        log.error("build %d (%s) crashed", record.number, cause, exc_info=error)


def run_dev_server(
    options: BuildOptions,
    sock: socket.socket,
    build_site: Callable[[BuildOptions], object],
    *,
    announce: Callable[[str], None] | None = None,
    quiet: float = QUIET,
    max_delay: float = MAX_DELAY,
) -> None:
    """Build, serve options.out_dir on sock and rebuild on every edit, until interrupted.

    The first build runs before `announce(url)`; a failing one is shown on every page rather
    than stopping the server. Returns once uvicorn has shut down (Ctrl-C, SIGTERM).
    """
    live = LiveReload()
    rebuilds: RebuildQueue[str, object] = RebuildQueue(
        lambda changes: build_site(options), quiet=quiet, max_delay=max_delay, name="rebuild"
    )
    rebuilds.subscribe(log_build)
    rebuilds.subscribe(live.record)
    stop_watching = threading.Event()
    watcher = threading.Thread(
        target=watch_project,
        args=(options, rebuilds.submit, stop_watching),
        name="watch",
        daemon=True,
    )
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(options.out_dir, live),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=3,
    )
    server = DevServer(config, live)
    rebuilds.start()
    try:
        watcher.start()
        rebuilds.submit(INITIAL_CHANGE)
        rebuilds.wait_idle(timeout=None)
        if announce is not None:
            announce(f"{site_url(sock)}/")
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it shut down for; the server is down, which was the point.
        log.info("interrupted")
    finally:
        stop_watching.set()
        if not rebuilds.stop(STOP_TIMEOUT):
            log.warning("a build is still running after %.0f s; not waiting for it", STOP_TIMEOUT)
        if watcher.is_alive():
            watcher.join(STOP_TIMEOUT)
