"""Shared helpers: a throwaway copy of the fixture project, the CLI run in-process, a fake
clock, and webhooks signed as Contentful signs them."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from headwater.cache import ContentCache
from headwater.cli import main
from headwater.content import check_snapshot
from headwater.contentful.signature import sign_request
from headwater.model import Content, Problem, RawEntry, Snapshot
from headwater.schema import ContentModel
from headwater.site import entry_url

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CONTENT = REPO / "tests" / "fixtures" / "site" / "content"


def make_project(root: Path, content: Path = FIXTURE_CONTENT) -> Path:
    """A complete project in root: the fixture content with the repo's model and theme."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(content, root / "content")
    for name in ("cms_schema", "templates", "static"):
        shutil.copytree(REPO / name, root / name)
    return root


def make_repo_project(root: Path) -> Path:
    """A copy of the repository's own project (its content/, model and theme) in root, so a
    test builds it without touching the checkout's .cache/ or public/."""
    return make_project(root, REPO / "content")


def write(project: Path, relative: str, text: str) -> Path:
    path = project / "content" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def headwater(project: Path, *args: str) -> Result:
    """Run the CLI against project, as a user would, and return its result."""
    return CliRunner().invoke(main, ["--project", str(project), *args], catch_exceptions=False)


def build(project: Path, *args: str) -> Result:
    return headwater(
        project, "build", "--source", "local", "--base-url", "https://example.test", *args
    )


def snapshot_tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below folder with its bytes and modification time."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# Root-run Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class FakeClock:
    """A monotonic clock that moves only when the test says so; whoever waits by it may ask
    to be woken whenever it moves (`on_advance`), so no wait lasts real time."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def on_advance(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
        for callback in self._listeners:
            callback()


SECRET = "s3cr3t-" + "x" * 57
MGMT_JSON = "application/vnd.contentful.management.v1+json"
PUBLISH = "ContentManagement.Entry.publish"
WEBHOOK_PATH = "/webhooks/contentful"


def link(kind: str, target: str) -> dict[str, Any]:
    return {"sys": {"type": "Link", "linkType": kind, "id": target}}


def payload(
    entry_id: str,
    version: int,
    title: str | None = None,
    space: str | None = None,
    environment: str = "master",
) -> bytes:
    data: dict[str, Any] = {"sys": {"id": entry_id, "type": "Entry", "revision": version}}
    if space is not None:
        data["sys"]["space"] = link("Space", space)
        data["sys"]["environment"] = link("Environment", environment)
    if title is not None:
        data["fields"] = {"title": {"en-US": title}}
    return json.dumps(data).encode()


def signed(
    entry_id: str = "abc",
    version: int = 3,
    *,
    topic: str = PUBLISH,
    title: str | None = None,
    secret: str = SECRET,
    key: str | None = None,
    timestamp: int | None = None,
    body: bytes | None = None,
    space: str | None = None,
    environment: str = "master",
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and its headers, signed as Contentful signs them."""
    raw = payload(entry_id, version, title, space, environment) if body is None else body
    headers = {"Content-Type": MGMT_JSON, "X-Contentful-Topic": topic}
    if key is not None:
        headers["X-Contentful-Idempotency-Key"] = key
    signature = sign_request(secret, "POST", WEBHOOK_PATH, headers, raw, timestamp)
    return raw, {**headers, **signature.as_dict()}


def raw(entry_id: str, content_type: str, fields: dict[str, Any], origin: str) -> RawEntry:
    """A raw entry as a source would give it (its digest is its id: tests never cache)."""
    return RawEntry(entry_id, content_type, fields, origin, digest=f"{entry_id}:1")


def validate(snapshot: Snapshot, model: ContentModel) -> tuple[Content | None, list[Problem]]:
    """Check a snapshot as a build does, without a content cache."""
    return check_snapshot(snapshot, model, cache=ContentCache.disabled(), url_for=entry_url)


def read_all(snapshot: Snapshot) -> dict[str, RawEntry]:
    """Every raw entry of a snapshot, by id."""
    return snapshot.reader.read(list(snapshot.heads))


def stores_of(folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What every SQLite store below folder holds (its tables' rows), not its bytes: WAL mode
    makes side files when a store is only read."""
    import sqlite3

    found: dict[str, list[tuple[Any, ...]]] = {}
    for path in sorted(folder.rglob("*.sqlite3")):
        db = sqlite3.connect(path)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in sorted(tables):
                rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
                found[f"{path.relative_to(folder)}:{table}"] = sorted(rows, key=repr)
        finally:
            db.close()
    return found
