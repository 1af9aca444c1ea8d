"""The webhook receiver's journal: every accepted change, kept on disk until a build that
covers it has succeeded, and the idempotency keys of recent deliveries.

The receiver writes a change and its delivery's key in one transaction *before* it answers
2xx, and deletes exactly the rows a batch covered once that batch's build succeeded. A kill at
any moment therefore loses nothing; at worst a change is built twice (killed after the build,
before the delete).

Durability: SQLite in WAL mode with `synchronous=FULL`, so every commit fsyncs the WAL before
the receiver answers. NORMAL would be enough to survive a killed process, but could lose the
last commits on a power cut or kernel crash: after our 2xx Contentful never redelivers, so
that change would be lost. One fsync per webhook is cheap at webhook rates.

Tables (for an operator with `sqlite3 journal.sqlite3`):
  changes(seq, kind, entity_id, topic, version, title, delivery, received_at, attempts,
          last_error, last_attempt_at)   one row per accepted change, until it is built
  deliveries(key, seen_at)               idempotency keys, pruned by age and count
Times are ISO-8601 UTC text with microseconds, so they sort as they read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from headwater.changes import Change
from headwater.errors import ConfigError

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.sqlite3"
LOCK_NAME = "journal.lock"
SCHEMA_VERSION = 1
KEY_MAX_AGE = 7 * 24 * 3600.0
"""Seconds an idempotency key is remembered; Contentful redelivers within hours, not days."""
KEY_MAX_COUNT = 10_000
BUSY_TIMEOUT = 5.0
"""Seconds to wait for another connection's write lock (an operator's sqlite3 shell)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    version INTEGER,
    title TEXT,
    delivery TEXT,
    received_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_age ON deliveries (seen_at);
"""


def iso(moment: float) -> str:
    """A POSIX time as fixed-width ISO-8601 UTC text, e.g. 2026-12-03T09:41:07.000000Z."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class Accepted:
    """The delivery is new; its change (None for a topic that cannot alter the site) is
    journaled with its row number."""

    change: Change | None


@dataclass(frozen=True)
class Duplicate:
    """The delivery's idempotency key was seen before: nothing was written."""

    key: str


@dataclass(frozen=True)
class PendingChange:
    """A journaled change that no successful build has covered yet."""

    change: Change
    received_at: str
    attempts: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        change = self.change
        return {
            "kind": change.kind,
            "id": change.id,
            "topic": change.topic,
            "version": change.version,
            "title": change.title,
            "received_at": self.received_at,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class JournalSummary:
    """How much is pending, since when, and the first few rows."""

    count: int
    oldest: str | None
    """received_at of the oldest pending change."""
    first: list[PendingChange]


class Journal:
    """The journal in one SQLite file; safe to call from any thread, one statement at a time.

    Each method is one short transaction, so the event loop may call it through a thread
    without holding anything up. `now` is the wall clock (POSIX seconds) it stamps rows with.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        now: Callable[[], float] = time.time,
        key_max_age: float = KEY_MAX_AGE,
        key_max_count: int = KEY_MAX_COUNT,
    ) -> None:
        self.path = path
        self._now = now
        self._key_max_age = key_max_age
        self._key_max_count = key_max_count
        self._lock = threading.Lock()
        try:
            # Autocommit mode: every transaction below is opened and committed explicitly.
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"the webhook journal {path} was written by a newer headwater "
                    f"(schema {version}); upgrade headwater or use another --state"
                )
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the webhook journal {path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def accept(self, change: Change | None, key: str | None) -> Accepted | Duplicate:
        """Journal a delivery: its key (if any) and its change (if any), in one transaction.

        Duplicate when the key was seen within the remembered window. Raises sqlite3.Error
        when the disk refuses: then nothing is journaled and the receiver must not answer 2xx.
        """
        now = self._now()
        stamp = iso(now)
        with self._transaction() as db:
            if key:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO deliveries (key, seen_at) VALUES (?, ?)", (key, stamp)
                ).rowcount
                if not inserted:
                    return Duplicate(key)
                self._prune_keys(db, now)
            if change is None:
                return Accepted(None)
            cursor = db.execute(
                "INSERT INTO changes (kind, entity_id, topic, version, title, delivery,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (change.kind, change.id, change.topic, change.version, change.title, key, stamp),
            )
            seq = cursor.lastrowid
        assert seq is not None
        return Accepted(
            Change(change.kind, change.id, change.topic, change.version, change.title, seq)
        )

    def _prune_keys(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM deliveries WHERE seen_at < ?", (iso(now - self._key_max_age),))
        # Everything older than the newest key_max_count keys; cheap through the index.
        db.execute(
            "DELETE FROM deliveries WHERE seen_at <= (SELECT seen_at FROM deliveries"
            " ORDER BY seen_at DESC, key DESC LIMIT 1 OFFSET ?)",
            (self._key_max_count,),
        )

    def pending(self) -> list[PendingChange]:
        """Every change not yet covered by a successful build, oldest first."""
        with self._lock:
            rows = self._db.execute(_SELECT).fetchall()
        return [_pending(row) for row in rows]

    def summary(self, limit: int = 10) -> JournalSummary:
        """The pending count, the oldest's time and the first `limit` rows, read at once."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                count, oldest = self._db.execute(
                    "SELECT count(*), min(received_at) FROM changes"
                ).fetchone()
                rows = self._db.execute(_SELECT + " LIMIT ?", (limit,)).fetchall()
            finally:
                self._db.execute("COMMIT")
        return JournalSummary(count=count, oldest=oldest, first=[_pending(row) for row in rows])

    def complete(self, seqs: Iterable[int]) -> int:
        """Delete exactly these rows (a batch whose build succeeded); returns how many."""
        numbers = sorted(set(seqs))
        if not numbers:
            return 0
        with self._transaction() as db:
            return sum(
                db.execute(f"DELETE FROM changes WHERE seq IN ({_marks(chunk)})", chunk).rowcount
                for chunk in _chunks(numbers)
            )

    def note_attempt(self, seqs: Iterable[int], error: str) -> None:
        """Count a failed build of these rows, and why it failed (one sentence)."""
        numbers = sorted(set(seqs))
        stamp = iso(self._now())
        with self._transaction() as db:
            for chunk in _chunks(numbers):
                db.execute(
                    "UPDATE changes SET attempts = attempts + 1, last_error = ?,"
                    f" last_attempt_at = ? WHERE seq IN ({_marks(chunk)})",
                    (error, stamp, *chunk),
                )

    def clear(self) -> int:
        """Forget every pending change (an operator gave up on them); returns how many."""
        with self._transaction() as db:
            return db.execute("DELETE FROM changes").rowcount


_SELECT = (
    "SELECT seq, kind, entity_id, topic, version, title, received_at, attempts, last_error"
    " FROM changes ORDER BY seq"
)
_CHUNK = 500
"""Row numbers per statement: below SQLite's limit on bound parameters."""


def _pending(row: tuple[Any, ...]) -> PendingChange:
    seq, kind, entity_id, topic, version, title, received_at, attempts, last_error = row
    return PendingChange(
        change=Change(kind, entity_id, topic, version, title, seq),
        received_at=received_at,
        attempts=attempts,
        last_error=last_error,
    )


def _chunks(numbers: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(numbers), _CHUNK):
        yield numbers[start : start + _CHUNK]


def _marks(chunk: list[int]) -> str:
    return ", ".join("?" * len(chunk))


@contextlib.contextmanager
def journal_in(state_dir: Path, **options: Any) -> Iterator[Journal]:
    """The journal in state_dir, held exclusively: a second receiver (or `--clear-pending`)
    on the same folder would build or drop the same changes behind this one's back."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock: IO[bytes] = (state_dir / LOCK_NAME).open("ab")
    except OSError as exc:
        raise ConfigError(f"cannot use {state_dir} for the webhook journal: {exc}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another headwater webhook receiver is using {state_dir}; stop it first, "
                "or give this one another --state folder"
            ) from None
        journal = Journal(state_dir / JOURNAL_NAME, **options)
        try:
            yield journal
        finally:
            journal.close()
