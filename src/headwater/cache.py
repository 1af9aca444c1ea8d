"""The content cache: validated entries kept by digest, their long texts, and body HTML.

A build checks against the content model only the entries whose source digest changed; every
other entry comes back from here as it was validated. Long texts (RichText bodies) are read
only when a page renders them: from the source when it keeps them on disk itself (the
Contentful store), else from a copy stored beside the records. The sanitised HTML of a body is
kept under a key that covers everything it was made from, so an article whose related cards
changed re-renders without parsing or sanitising its body again.

One SQLite database (WAL) per source under `.cache/headwater/content/`. It is a cache: a
missing, damaged or stale file costs a full validation, never a wrong build. Its rows are keyed
by entry id and digest, so a build that dies part-way leaves only rows that are still true.
Forked render workers open their own connection (a SQLite handle must not cross a fork).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from headwater.model import LongText, TextSource

log = logging.getLogger(__name__)

FORMAT = 2
"""2: a text the source keeps itself is a row without a value (1 copied every one)."""
HTML_LOOKUPS = 32
"""Bodies looked up one by one before all stored keys are read at once."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (id TEXT PRIMARY KEY, digest TEXT NOT NULL, record BLOB);
CREATE TABLE IF NOT EXISTS texts (
    entry_id TEXT NOT NULL, digest TEXT NOT NULL, value BLOB,
    PRIMARY KEY (entry_id, digest));
CREATE INDEX IF NOT EXISTS texts_digest ON texts (digest);
CREATE TABLE IF NOT EXISTS html (key TEXT PRIMARY KEY, text_digest TEXT NOT NULL, body BLOB);
"""


def engine_digest() -> str:
    """A hash of the engine's own code: a cache made by other code is not trusted."""
    package = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=12)
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def text_digest(value: Any) -> str:
    """A digest of a long text's value: Markdown source or a RichText document."""
    data = value.encode() if isinstance(value, str) else pickle.dumps(value, protocol=5)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ContentCache:
    """Validated records by entry id and digest, long texts by digest, body HTML by key.

    `scope` names the source (local content, one Contentful space and API) and `key` what the
    records depend on besides their own source digest: the content model and the engine.
    `source` reads long texts back from the source; without one, the cache keeps a copy.
    """

    def __init__(self, path: Path | None, key: str, source: TextSource | None = None) -> None:
        self.path = path
        self.key = key
        self.source = source
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        # Without a file (--full builds), long texts and HTML live here for one build; with
        # one, the texts this build checked stay here too while a child process saves them.
        self._texts: dict[str, Any] = {}
        self._html: dict[str, Any] = {}
        self._writer: tuple[int, int] | None = None
        """(the writing child's pid, its parent's pid) while one saves in the background."""
        self._html_lookups = 0
        self._html_keys: set[str] | None = None
        """After a few lookups, the keys of all stored HTML: a build that renders many pages
        (a cold one, while a child writes the cache) asks SQLite once, not once a page."""

    @classmethod
    def for_scope(
        cls, cache_dir: Path, scope: str, key: str, source: TextSource | None = None
    ) -> ContentCache:
        name = hashlib.blake2b(scope.encode(), digest_size=8).hexdigest()
        return cls(cache_dir / "content" / f"{name}.sqlite3", key, source)

    @classmethod
    def disabled(cls, source: TextSource | None = None) -> ContentCache:
        """A cache that reuses nothing from earlier builds (for --full builds and tests); it
        keeps long texts the source cannot read back in memory for the one build."""
        return cls(None, "", source)

    @property
    def copies_texts(self) -> bool:
        """Whether `store` needs the values of long texts (else the source keeps them)."""
        return self.source is None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self._pid = os.getpid()
        self._db = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("the content cache %s is damaged (%s); starting a new one", self.path, exc)
            self.path.unlink(missing_ok=True)
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # A cache may lose its last transaction in a power cut; it may not be corrupted.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        found = dict(db.execute("SELECT name, value FROM meta").fetchall())
        wanted = {"format": str(FORMAT), "key": self.key}
        if found != wanted:
            if found:
                log.info(
                    "the content cache %s was made for other code or model; clearing it", self.path
                )
            with db:
                db.execute("BEGIN IMMEDIATE")
                # Dropped, not emptied: a cache of another format has tables of another shape.
                for table in ("meta", "entries", "texts", "html"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 - fixed table names
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
        return db

    def close(self) -> None:
        """Wait for a background save, then close this process's connection."""
        self.wait()
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

    def wait(self) -> None:
        """Wait for the child saving records in the background, if this process started one."""
        if self._writer is None or self._writer[1] != os.getpid():
            return
        pid, _ = self._writer
        self._writer = None
        _, status = os.waitpid(pid, 0)
        if status != 0:
            log.warning(
                "saving the content cache failed (status %d); the next build checks more", status
            )

    # -- records ------------------------------------------------------------------------------

    def records(self, digests: Mapping[str, str]) -> dict[str, Any]:
        """The cached records whose entry id and digest match, unpickled."""
        db = self._connect()
        if db is None:
            return {}
        found: dict[str, Any] = {}
        loads = pickle.loads
        for entry_id, digest, record in db.execute("SELECT id, digest, record FROM entries"):
            if digests.get(entry_id) == digest:
                found[entry_id] = loads(record)
        return found

    def record(self, entry_id: str, digest: str) -> Any | None:
        """One cached record, if it is there for this digest."""
        db = self._connect()
        if db is None:
            return None
        row = db.execute("SELECT digest, record FROM entries WHERE id = ?", (entry_id,)).fetchone()
        if row is None or row[0] != digest:
            return None
        return pickle.loads(row[1])

    def store(
        self,
        records: Mapping[str, tuple[str, Any]],
        texts: Iterable[tuple[str, str, Any]],
        gone: Iterable[str],
        *,
        background: bool = False,
    ) -> None:
        """Save records (id → (digest, record)), long texts ((entry id, digest, value) each;
        the value None when the source keeps it), and forget the entries in gone, in one
        transaction.

        With `background`, a forked child does the writing (a cold build's thousands of rows)
        while this process goes on; `close()` waits for it. The texts stay readable here.
        """
        gone = list(gone)
        texts = list(texts)
        if self.path is None or background:
            self._texts.update((d, v) for _, d, v in texts if v is not None)
        if self.path is None or not (records or texts or gone):
            return
        if background and threading.active_count() == 1 and hasattr(os, "fork"):
            self.wait()
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    self._write(records, texts, gone)
                    status = 0
                finally:
                    os._exit(status)
            self._writer = (pid, parent)
            return
        self._write(records, texts, gone)

    def _write(
        self,
        records: Mapping[str, tuple[str, Any]],
        texts: list[tuple[str, str, Any]],
        gone: list[str],
    ) -> None:
        db = self._connect()
        assert db is not None
        dumps = pickle.dumps
        with db:
            db.execute("BEGIN IMMEDIATE")
            # A cache with no texts yet (a cold build's) holds no dead ones to look for.
            fresh = db.execute("SELECT 1 FROM texts LIMIT 1").fetchone() is None
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                [(i, d, dumps(r, protocol=5)) for i, (d, r) in records.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO texts VALUES (?, ?, ?)",
                [(i, d, None if v is None else dumps(v, protocol=5)) for i, d, v in texts],
            )
            db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in gone])
            changed = [] if fresh else [*records, *gone]
            if changed:
                # Texts no current record refers to, and HTML made from them, are dead.
                db.executemany(
                    "DELETE FROM texts WHERE entry_id = ? AND digest NOT IN "
                    "(SELECT value FROM json_each(?))",
                    [
                        (i, _json_list(_text_digests(records.get(i, ("", None))[1])))
                        for i in changed
                    ],
                )
                db.execute("DELETE FROM html WHERE text_digest NOT IN (SELECT digest FROM texts)")

    # -- long texts and HTML ------------------------------------------------------------------

    def text(self, text: LongText) -> Any:
        """A long text's value: from the source that keeps it, else from this cache's copy;
        KeyError when neither has it."""
        found = self._texts.get(text.digest, _MISSING)
        if found is not _MISSING:
            return found
        if self.source is not None:
            return self.source.text(text.entry_id, text.field, text.digest)
        db = self._connect()
        if db is None:
            raise KeyError(text.digest)
        row = db.execute(
            "SELECT value FROM texts WHERE digest = ? AND value IS NOT NULL LIMIT 1",
            (text.digest,),
        ).fetchone()
        if row is None:
            raise KeyError(text.digest)
        return pickle.loads(row[0])

    def html(self, key: str) -> Any | None:
        db = self._connect()
        if db is None:
            return self._html.get(key)
        self._html_lookups += 1
        if self._html_keys is None and self._html_lookups > HTML_LOOKUPS:
            self._html_keys = {k for (k,) in db.execute("SELECT key FROM html")}
        if self._html_keys is not None and key not in self._html_keys:
            return None
        row = db.execute("SELECT body FROM html WHERE key = ?", (key,)).fetchone()
        return None if row is None else pickle.loads(row[0])

    def store_html(self, items: Iterable[tuple[str, str, Any]]) -> None:
        """Keep rendered bodies: (key, text digest, body) each."""
        db = self._connect()
        if db is None:
            self._html.update((k, b) for k, _, b in items)
            return
        rows = [(k, d, pickle.dumps(b, protocol=5)) for k, d, b in items]
        if not rows:
            return
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO html VALUES (?, ?, ?)", rows)
        if self._html_keys is not None:
            self._html_keys.update(key for key, _, _ in rows)


_MISSING = object()


def _text_digests(record: Any) -> list[str]:
    if record is None:
        return []
    return [t.digest for t in getattr(record, "texts", ())]


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps(items)
