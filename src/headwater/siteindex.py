"""The site index: what the last build planned, so a build in proportion to the change can
tell which pages read the entries that changed.

For one output folder it keeps every entry's digest and *structure* (what decides which pages
exist and what they list: dates, links, flags, slugs — schema.structure), every route's recipe
with entries named by id, and for every entry the routes that read it (its own page, the lists
that show it, the pages of entries that link to it or embed it). A build whose changes leave
every structure as it was, and the site settings, assets, theme and options alone, makes only
the routes that read a changed entry, from their recipes; anything else plans the whole site.

SQLite (WAL), one file per output folder beside the build manifest. It is a cache: missing,
damaged or made by other code, it costs one full plan, never a wrong build; it is written
after the site it describes is published, and a build that dies before that leaves the
previous index, which no longer matches the live folder's manifest and is not used.
"""

from __future__ import annotations

import logging
import os
import pickle
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from headwater.model import Entry
from headwater.site import Recipe

log = logging.getLogger(__name__)

FORMAT = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL, type TEXT NOT NULL, url TEXT,
    origin TEXT NOT NULL, slug TEXT, structure TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS routes (
    path TEXT PRIMARY KEY, recipe BLOB NOT NULL, reads BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS readers (entry_id TEXT PRIMARY KEY, paths BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS deep (id TEXT PRIMARY KEY, digest TEXT NOT NULL, made_of TEXT NOT NULL);
"""


class IndexedEntry(NamedTuple):
    """One entry as the last build saw it (a tuple: the index holds one per entry)."""

    digest: str
    content_type: str
    url: str | None
    origin: str
    slug: str | None
    structure: str


Deep = Mapping[str, tuple[str, str]]
"""Entries' deep digests, with the versions each was made of (manifest.Fingerprinter.deep)."""
Rows = Callable[
    [],
    tuple[Mapping[str, "IndexedEntry"], Mapping[str, tuple[Any, tuple[str, ...]]], Deep],
]
"""Makes the index's rows: entries by id, (encoded recipe, ids read) by output path, and the
entries' deep digests."""


@dataclass(frozen=True)
class Ref:
    """An entry named by id in a stored recipe."""

    id: str


@dataclass(frozen=True)
class State:
    """What the index says about the last build: its stamp and its entries."""

    stamp: dict[str, Any]
    entries: dict[str, IndexedEntry]


class SiteIndex:
    """The index of one output folder's last plan."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._writer: tuple[int, int] | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self._pid = os.getpid()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("the site index %s is damaged (%s); starting a new one", self.path, exc)
            self.path.unlink(missing_ok=True)
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        self.wait()
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

    def wait(self) -> None:
        """Wait for a background save this process started."""
        if self._writer is None or self._writer[1] != os.getpid():
            return
        pid, _ = self._writer
        self._writer = None
        _, status = os.waitpid(pid, 0)
        if status != 0:
            log.warning(
                "saving the site index failed (status %d); the next build plans all", status
            )

    # -- reading ------------------------------------------------------------------------------

    def state(self) -> State | None:
        """The last plan's stamp and entries, or None when there is none (or it is unusable)."""
        try:
            db = self._connect()
            row = db.execute("SELECT value FROM meta WHERE name = 'stamp'").fetchone()
            if row is None:
                return None
            stamp = pickle.loads(row[0])
            if stamp.get("format") != FORMAT:
                return None
            make = IndexedEntry._make
            entries = {row[0]: make(row[1:]) for row in db.execute("SELECT * FROM entries")}
        except (sqlite3.DatabaseError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("ignoring the site index %s (%s)", self.path, exc)
            return None
        return State(stamp, entries)

    def deep_digests(self) -> Mapping[str, tuple[str, str]]:
        """The deep digests of the entries the last builds fingerprinted (see `Deep`), each
        read when first asked for: an edit asks for a few hundred of the site's entries."""
        return _DeepDigests(self)

    def has(self, path: str) -> bool:
        """Whether the last plan made this output path."""
        db = self._connect()
        return db.execute("SELECT 1 FROM routes WHERE path = ?", (path,)).fetchone() is not None

    def readers(self, ids: Iterable[str]) -> set[str]:
        """The paths of the routes that read any of these entries."""
        db = self._connect()
        found: set[str] = set()
        for entry_id in ids:
            row = db.execute("SELECT paths FROM readers WHERE entry_id = ?", (entry_id,)).fetchone()
            if row is not None:
                found.update(pickle.loads(row[0]))
        return found

    def routes(self, paths: Iterable[str]) -> dict[str, tuple[Any, tuple[str, ...]]]:
        """Stored (encoded recipe, ids read) by path."""
        db = self._connect()
        found = {}
        for path in paths:
            row = db.execute("SELECT recipe, reads FROM routes WHERE path = ?", (path,)).fetchone()
            if row is not None:
                found[path] = (pickle.loads(row[0]), tuple(pickle.loads(row[1])))
        return found

    # -- writing ------------------------------------------------------------------------------

    def save_all(self, stamp: dict[str, Any], rows: Rows, *, background: bool = False) -> None:
        """Replace the whole index (after a full plan) with `rows()`, in one transaction; with
        `background` a forked child makes the rows and writes them while this process goes
        on (`close()` waits for it)."""
        self.wait()
        if background and threading.active_count() == 1 and hasattr(os, "fork"):
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    self._save_all(stamp, *rows())
                    status = 0
                finally:
                    os._exit(status)
            self._writer = (pid, parent)
            return
        self._save_all(stamp, *rows())

    def _save_all(
        self,
        stamp: dict[str, Any],
        entries: Mapping[str, IndexedEntry],
        routes: Mapping[str, tuple[Any, tuple[str, ...]]],
        deep: Deep,
    ) -> None:
        db = self._connect()
        readers: dict[str, list[str]] = {}
        for path, (_, reads) in routes.items():
            for entry_id in reads:
                readers.setdefault(entry_id, []).append(path)
        dumps = pickle.dumps
        with db:
            db.execute("BEGIN IMMEDIATE")
            for table in ("meta", "entries", "routes", "readers", "deep"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (i, e.digest, e.content_type, e.url, e.origin, e.slug, e.structure)
                    for i, e in entries.items()
                ],
            )
            db.executemany(
                "INSERT INTO routes VALUES (?, ?, ?)",
                [
                    (p, dumps(r, protocol=5), dumps(list(d), protocol=5))
                    for p, (r, d) in routes.items()
                ],
            )
            db.executemany(
                "INSERT INTO readers VALUES (?, ?)",
                [(i, dumps(sorted(p), protocol=5)) for i, p in readers.items()],
            )
            db.executemany("INSERT INTO deep VALUES (?, ?, ?)", [(i, *d) for i, d in deep.items()])
            db.execute(
                "INSERT INTO meta VALUES ('stamp', ?)", (dumps({**stamp, "format": FORMAT}),)
            )

    def save_delta(
        self,
        stamp: dict[str, Any],
        entries: Mapping[str, IndexedEntry],
        reads: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
        deep: Deep,
    ) -> None:
        """After a build in proportion to the change: the changed entries, for each route
        made again what it reads now (path → (before, after)), and the deep digests worked
        out again, in one transaction."""
        db = self._connect()
        dumps = pickle.dumps
        gained: dict[str, set[str]] = {}
        lost: dict[str, set[str]] = {}
        for path, (before, after) in reads.items():
            for entry_id in set(after) - set(before):
                gained.setdefault(entry_id, set()).add(path)
            for entry_id in set(before) - set(after):
                lost.setdefault(entry_id, set()).add(path)
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (i, e.digest, e.content_type, e.url, e.origin, e.slug, e.structure)
                    for i, e in entries.items()
                ],
            )
            for path, (before, after) in reads.items():
                if before != after:
                    db.execute(
                        "UPDATE routes SET reads = ? WHERE path = ?",
                        (dumps(list(after), protocol=5), path),
                    )
            for entry_id in gained.keys() | lost.keys():
                row = db.execute(
                    "SELECT paths FROM readers WHERE entry_id = ?", (entry_id,)
                ).fetchone()
                paths = set(pickle.loads(row[0])) if row else set()
                paths = (paths | gained.get(entry_id, set())) - lost.get(entry_id, set())
                db.execute(
                    "INSERT OR REPLACE INTO readers VALUES (?, ?)",
                    (entry_id, dumps(sorted(paths), protocol=5)),
                )
            db.executemany(
                "INSERT OR REPLACE INTO deep VALUES (?, ?, ?)", [(i, *d) for i, d in deep.items()]
            )
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('stamp', ?)",
                (dumps({**stamp, "format": FORMAT}),),
            )


class _DeepDigests(Mapping[str, tuple[str, str]]):
    """The `deep` table as a read-only mapping, read row by row (in a forked renderer too:
    the index opens a connection of its own in each process)."""

    def __init__(self, index: SiteIndex) -> None:
        self._index = index

    def __getitem__(self, entry_id: str) -> tuple[str, str]:
        row = (
            self._index._connect()
            .execute("SELECT digest, made_of FROM deep WHERE id = ?", (entry_id,))
            .fetchone()
        )
        if row is None:
            raise KeyError(entry_id)
        return (row[0], row[1])

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._index._connect().execute("SELECT id FROM deep"))

    def __len__(self) -> int:
        return int(self._index._connect().execute("SELECT count(*) FROM deep").fetchone()[0])


def encode(recipe: Recipe) -> tuple[Any, ...]:
    """A recipe with its entries named by id, to store."""
    return (
        recipe.kind,
        recipe.own.id if recipe.own is not None else None,
        {name: _encode(value) for name, value in recipe.context.items()},
        recipe.params,
    )


def _encode(value: Any) -> Any:
    if isinstance(value, Entry):
        return Ref(value.id)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def decode(stored: tuple[Any, ...], entries: Mapping[str, Entry]) -> Recipe:
    """A stored recipe with its entries looked up again."""
    kind, own, context, params = stored
    return Recipe(
        kind,
        entries[own] if own is not None else None,
        {name: _decode(value, entries) for name, value in context.items()},
        params,
    )


def _decode(value: Any, entries: Mapping[str, Entry]) -> Any:
    if isinstance(value, Ref):
        return entries[value.id]
    if isinstance(value, list):
        return [_decode(v, entries) for v in value]
    return value


def reads(recipe: Recipe) -> tuple[str, ...]:
    """The ids of the entries a route's output is made from: its own entry, those in its
    context and everything they link to or embed (as route keys cover them)."""
    found: dict[str, None] = {}

    def add(entry: Entry) -> None:
        found[entry.id] = None
        for linked in entry._linked:
            if isinstance(linked, Entry):
                found[linked.id] = None

    if recipe.own is not None:
        add(recipe.own)
    for value in recipe.context.values():
        if isinstance(value, Entry):
            add(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Entry):
                    add(item)
    return tuple(sorted(found))
