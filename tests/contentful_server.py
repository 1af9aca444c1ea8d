"""A small stand-in for Contentful's Delivery and Preview APIs on 127.0.0.1, for tests.

It serves one in-memory space environment in the API's paths and shapes: `/locales`,
`/content_types`, `/sync` (initial sync and sync_token deltas, both in pages that link on with
nextPageUrl until nextSyncUrl) and `/entries` / `/assets` (skip/limit paging with `locale=*`).
Requests must carry an accepted `Authorization: Bearer` token. Use it as a context manager:

    with ContentfulServer(FakeSpace.from_fixtures(FIXTURES)) as server:
        ...  # CONTENTFUL_HOST=server.url
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

Raw = dict[str, Any]
DELIVERY_TOKEN = "test-delivery-token-3f9a"
PREVIEW_TOKEN = "test-preview-token-7c21"


@dataclass
class FakeSpace:
    """A space environment: its locales, content types, published items and change log."""

    space_id: str
    environment: str
    locales: list[Raw]
    content_types: list[Raw]
    items: dict[str, Raw] = field(default_factory=dict)
    """Published entries and assets by "Entry:id" / "Asset:id", in publishing order."""
    changes: list[Raw] = field(default_factory=list)
    """Every publish and deletion, oldest first; a sync token is a position in this list."""

    @classmethod
    def from_fixtures(cls, folder: Path) -> FakeSpace:
        """The space of tests/fixtures/contentful: its locales, types and initial sync pages."""

        def read(name: str) -> Raw:
            data: Raw = json.loads((folder / name).read_text(encoding="utf-8"))
            return data

        first = read("sync_initial_1.json")["items"][0]["sys"]
        space = cls(
            space_id=first["space"]["sys"]["id"],
            environment=first["environment"]["sys"]["id"],
            locales=read("locales.json")["items"],
            content_types=read("content_types.json")["items"],
        )
        for path in sorted(folder.glob("sync_initial_*.json")):
            for item in read(path.name)["items"]:
                space.publish(item)
        return space

    def publish(self, item: Raw) -> None:
        """Publish (or republish) an entry or asset, as the web app's Publish button does."""
        item = copy.deepcopy(item)
        key = f"{item['sys']['type']}:{item['sys']['id']}"
        self.items.pop(key, None)
        self.items[key] = item
        self.changes.append(item)

    def delete(self, kind: str, item_id: str) -> None:
        """Unpublish an entry or asset: sync reports a DeletedEntry / DeletedAsset."""
        gone = self.items.pop(f"{kind}:{item_id}")
        sys = {
            key: gone["sys"][key]
            for key in ("space", "id", "createdAt", "updatedAt", "environment", "revision")
        }
        sys["type"] = f"Deleted{kind}"
        sys["deletedAt"] = sys["updatedAt"]
        self.changes.append({"sys": sys})

    def delta(self, position: int) -> list[Raw]:
        """What changed since a position of the log: the last state of each item touched."""
        latest: dict[str, Raw] = {}
        for change in self.changes[position:]:
            key = f"{_kind(change)}:{change['sys']['id']}"
            latest.pop(key, None)
            latest[key] = change
        return list(latest.values())


class ContentfulServer:
    """ThreadingHTTPServer on 127.0.0.1 (a free port) serving one FakeSpace."""

    def __init__(
        self,
        space: FakeSpace,
        *,
        tokens: tuple[str, ...] = (DELIVERY_TOKEN, PREVIEW_TOKEN),
        page_size: int = 3,
        max_items: int = 1000,
    ) -> None:
        self.space = space
        self.tokens = tokens
        self.page_size = page_size
        self.max_items = max_items
        """Pages asking for more items than this get 400 "Response size too big"."""
        self.requests: list[str] = []
        self.trickle: float | None = None
        """Seconds between the bytes of a /sync answer: a server that is slow, not down."""
        self.reject_tokens = False
        """Answer a delta's sync token with 404, as Contentful does for one it no longer knows."""
        self._lock = threading.Lock()
        self._pages: dict[int, Raw] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ContentfulServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def paths(self, suffix: str) -> list[str]:
        """The requests whose path ends with suffix, e.g. "/sync"."""
        return [r for r in self.requests if urlsplit(r).path.endswith(suffix)]

    def answer(self, path: str, query: dict[str, str], token: str) -> tuple[int, Raw]:
        """The status and JSON body for one GET request."""
        with self._lock:
            self.requests.append(path + ("?" + "&".join(f"{k}={v}" for k, v in query.items())))
        if token not in self.tokens:
            return 401, _error(
                "AccessTokenInvalid", "The access token you sent could not be found or is invalid."
            )
        root = f"/spaces/{self.space.space_id}/environments/{self.space.environment}"
        if not path.startswith(root + "/"):
            return 404, _error("NotFound", "The resource could not be found.")
        endpoint = path.removeprefix(root)
        if endpoint == "/locales":
            return 200, _array(self.space.locales)
        if endpoint == "/content_types":
            return 200, _array(self.space.content_types)
        if endpoint == "/sync":
            return self._sync(root, query)
        if endpoint in ("/entries", "/assets"):
            kind = "Entry" if endpoint == "/entries" else "Asset"
            return self._collection(kind, query)
        return 404, _error("NotFound", "The resource could not be found.")

    def _sync(self, root: str, query: dict[str, str]) -> tuple[int, Raw]:
        state: Raw
        if query.get("initial") == "true":
            state = {"items": list(self.space.items), "end": len(self.space.changes), "at": 0}
        elif "sync_token" in query:
            try:
                state = json.loads(base64.urlsafe_b64decode(query["sync_token"]))
            except ValueError:
                return 400, _error("BadRequest", "The sync token is invalid.")
            if "page" in state:  # a token from nextPageUrl: the rest of a listing
                with self._lock:
                    found = self._pages.get(state["page"])
                if found is None:
                    return 400, _error("BadRequest", "The sync token is invalid.")
                state = found
            elif "position" in state:  # a token from nextSyncUrl: everything since then
                if self.reject_tokens:
                    return 404, _error("NotFound", "The resource could not be found.")
                touched = self.space.delta(state["position"])
                keys = [f"{_kind(c)}:{c['sys']['id']}" for c in touched]
                state = {"items": keys, "end": len(self.space.changes), "at": 0}
        else:
            return 400, _error("BadRequest", "Either initial or sync_token is required.")
        keys = state["items"][state["at"] : state["at"] + self.page_size]
        body: Raw = {"sys": {"type": "Array"}, "items": [self._item(key) for key in keys]}
        following = state["at"] + self.page_size
        sync = f"{self.url}{root}/sync?sync_token="
        if following < len(state["items"]):
            # The listing stays here, as Contentful keeps it: tokens are short, whatever the size.
            with self._lock:
                page = len(self._pages)
                self._pages[page] = {**state, "at": following}
            body["nextPageUrl"] = sync + _token({"page": page})
        else:
            body["nextSyncUrl"] = sync + _token({"position": state["end"]})
        return 200, body

    def _item(self, key: str) -> Raw:
        if key in self.space.items:
            return self.space.items[key]
        # Only a delta names an item that is gone: its deletion record from the log.
        kind, item_id = key.split(":", 1)
        return next(
            c
            for c in reversed(self.space.changes)
            if c["sys"]["id"] == item_id and c["sys"]["type"] == f"Deleted{kind}"
        )

    def _collection(self, kind: str, query: dict[str, str]) -> tuple[int, Raw]:
        limit, skip = int(query.get("limit", "100")), int(query.get("skip", "0"))
        if limit > self.max_items:
            return 400, _error(
                "BadRequest", "Response size too big. Maximum allowed response size: 7340032B."
            )
        wanted = set(query["sys.id[in]"].split(",")) if "sys.id[in]" in query else None
        every = sorted(
            (
                item
                for key, item in self.space.items.items()
                if key.startswith(kind + ":") and (wanted is None or item["sys"]["id"] in wanted)
            ),
            key=lambda item: item["sys"]["id"],
        )
        body = _array(every[skip : skip + limit], total=len(every), skip=skip, limit=limit)
        return 200, body


def _handler(server: ContentfulServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            status, body = server.answer(parts.path, query, token)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.contentful.delivery.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if server.trickle is not None and parts.path.endswith("/sync"):
                try:
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(server.trickle)  # a slow server, not a test's wait
                except OSError:
                    return  # the client gave up
            else:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the test reads server.requests instead of stderr

    return Handler


def _array(items: list[Raw], *, total: int | None = None, skip: int = 0, limit: int = 1000) -> Raw:
    return {
        "sys": {"type": "Array"},
        "total": len(items) if total is None else total,
        "skip": skip,
        "limit": limit,
        "items": items,
    }


def _error(error_id: str, message: str) -> Raw:
    return {"sys": {"type": "Error", "id": error_id}, "message": message, "requestId": "local"}


def _kind(item: Raw) -> str:
    """Entry or Asset, for an item or its deletion record."""
    return str(item["sys"]["type"]).removeprefix("Deleted")


def _token(state: Raw) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
