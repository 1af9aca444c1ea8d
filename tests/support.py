"""Shared helpers: a throwaway copy of the fixture project, and the CLI run in-process."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from headwater.cache import ContentCache
from headwater.cli import main
from headwater.content import check_snapshot
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
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def raw(entry_id: str, content_type: str, fields: dict[str, Any], origin: str) -> RawEntry:
    """A raw entry as a source would give it (its digest is its id: tests never cache)."""
    return RawEntry(entry_id, content_type, fields, origin, digest=f"{entry_id}:1")


def validate(snapshot: Snapshot, model: ContentModel) -> tuple[Content | None, list[Problem]]:
    """Check a snapshot as a build does, without a content cache."""
    return check_snapshot(snapshot, model, cache=ContentCache.disabled(), url_for=entry_url)


def read_all(snapshot: Snapshot) -> dict[str, RawEntry]:
    """Every raw entry of a snapshot, by id."""
    return snapshot.reader.read(list(snapshot.heads))
