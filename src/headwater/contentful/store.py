"""The Contentful store on disk: one row per entry and asset, the sync token, locales and
content types — an embedded database (SQLite, WAL) per API under
`<cache>/contentful/<space>/<environment>/{delivery,preview}.sqlite3`.

A delta writes its rows and the new sync token in one transaction, so a sync that dies part-way
leaves the previous rows and token exactly as they were. A store made for another space,
environment, host, API, locale or content model, a damaged file, or one written by an earlier
version of headwater (`delivery.json`) is never read: the next sync starts afresh, into a new
file that replaces the old one only when it is complete.

Each item is kept as the API sent it, pickled (format 3): a cold build of 10,000 entries
writes and reads it back about a second faster than as JSON text. Only this process's own
cache files are unpickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 3
Raw = dict[str, Any]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL, id TEXT NOT NULL, content_type TEXT NOT NULL, version TEXT NOT NULL,
    label TEXT NOT NULL, raw TEXT NOT NULL, PRIMARY KEY (kind, id));
"""


@dataclass(frozen=True)
class Row:
    """One stored entry or asset, as written: `label` is its title for messages."""

    kind: str
    id: str
    content_type: str
    version: str
    label: str
    raw: Raw


def store_path(cache_dir: Path, space: str, environment: str, api: str) -> Path:
    """Where the store for one space environment and API lives below the cache folder."""
    return cache_dir / "contentful" / _safe(space) / _safe(environment) / f"{api}.sqlite3"


class Store:
    """An open store; `key` says which space, API, host, locale and model it is for."""

    def __init__(self, path: Path, db: sqlite3.Connection, key: dict[str, str]) -> None:
        self.path = path
        self.db = db
        self.key = key

    @classmethod
    def open(cls, path: Path, key: dict[str, str]) -> Store | None:
        """The store at path if it is whole and was made for key; None means sync afresh."""
        for old in (path.with_suffix(".json"),):  # what versions before 2 wrote
            if old.exists():
                log.info("replacing the Contentful store %s of an earlier version", old)
                old.unlink(missing_ok=True)
        if not path.exists():
            return None
        try:
            db = _connect(path)
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            found = json.loads(meta.get("key", "null"))
            if meta.get("format") != str(FORMAT) or "sync_token" not in meta:
                db.close()
                log.info("the Contentful store %s is incomplete; running a full sync", path)
                return None
        except (sqlite3.DatabaseError, ValueError) as exc:
            log.warning(
                "the Contentful store %s is damaged (%s); rebuilding it with a full sync", path, exc
            )
            return None
        if found != key:
            changed = sorted(
                k for k in key.keys() | (found or {}).keys() if key.get(k) != (found or {}).get(k)
            )
            log.info(
                "the Contentful store %s was made for a different %s; running a full sync",
                path,
                ", ".join(changed),
            )
            db.close()
            return None
        return cls(path, db, key)

    def close(self) -> None:
        self.db.close()

    # -- reading ------------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def meta_json(self, name: str) -> Any:
        value = self.meta(name)
        return None if value is None else json.loads(value)

    @property
    def sync_token(self) -> str | None:
        return self.meta("sync_token") or None

    def heads(self, kind: str) -> Iterator[tuple[str, str, str, str]]:
        """(id, content type, version, label) of every stored item of a kind, by id."""
        yield from self.db.execute(
            "SELECT id, content_type, version, label FROM items WHERE kind = ? ORDER BY id", (kind,)
        )

    def rows(self, kind: str, ids: Iterable[str] | None = None) -> list[Row]:
        """Stored items of a kind (all of them, or those with these ids), parsed."""
        if ids is None:
            found = self.db.execute(
                "SELECT kind, id, content_type, version, label, raw FROM items WHERE kind = ? "
                "ORDER BY id",
                (kind,),
            ).fetchall()
        else:
            wanted = list(ids)
            found = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found += self.db.execute(
                    "SELECT kind, id, content_type, version, label, raw FROM items "
                    f"WHERE kind = ? AND id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                    (kind, *chunk),
                ).fetchall()
        return [Row(k, i, t, v, label, pickle.loads(raw)) for k, i, t, v, label, raw in found]

    def count(self, kind: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM items WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """Every write of a delta, committed together at the end or not at all."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            yield Writer(self.db)


class Writer:
    """Writes of one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def put(self, rows: Iterable[Row]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?)",
            [
                (r.kind, r.id, r.content_type, r.version, r.label, pickle.dumps(r.raw, 5))
                for r in rows
            ],
        )

    def delete(self, kind: str, ids: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM items WHERE kind = ? AND id = ?", [(kind, i) for i in ids])

    def set_meta(self, **values: Any) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
        )


@contextlib.contextmanager
def new_store(path: Path, key: dict[str, str]) -> Iterator[Store]:
    """A store made afresh (an initial sync): written beside path, and put in its place only
    when the block ends without an error — until then the old store stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    temporary.unlink(missing_ok=True)
    db = _connect(temporary)
    store = Store(temporary, db, key)
    try:
        with store.transaction() as writer:
            writer.set_meta(format=str(FORMAT), key=key)
        yield store
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        os.replace(temporary, path)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        store.path = path
        store.db = _connect(path)
    except BaseException:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(temporary) + suffix).unlink(missing_ok=True)
        raise


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    # A mirror of the CMS: losing the last transaction in a power cut costs one more delta.
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(name: str) -> str:
    """A path component for an id; ids are [A-Za-z0-9._-] already, but never trust a path."""
    cleaned = _UNSAFE.sub("_", name)
    return cleaned if cleaned.strip(".") else "_"
