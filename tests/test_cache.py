"""The content cache: records by digest, long texts (a copy, or read from the source that keeps
them), rendered bodies, and caches of an earlier format rebuilt rather than misread."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from headwater.cache import FORMAT, ContentCache
from headwater.model import LongText
from headwater.schema import Checked

KEY = "model:engine"


class Source:
    """A source that keeps its texts itself, and says which it was asked for."""

    def __init__(self, texts: dict[tuple[str, str, str], Any]) -> None:
        self.texts = texts
        self.asked: list[tuple[str, str, str]] = []

    def text(self, entry_id: str, field: str, digest: str) -> Any:
        self.asked.append((entry_id, field, digest))
        return self.texts[(entry_id, field, digest)]


def record(entry_id: str, digest: str, *texts: str) -> Checked:
    long_texts = tuple(LongText(entry_id, "body", t, 3) for t in texts)
    return Checked(entry_id, "article", f"article {entry_id}", digest, {}, long_texts)


def stored_texts(path: Path) -> list[tuple[str, str, Any]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT entry_id, digest, value FROM texts ORDER BY digest").fetchall()
    finally:
        db.close()


def test_a_text_the_source_keeps_is_read_from_it_and_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "content.sqlite3"
    body = {"nodeType": "document", "content": []}
    source = Source({("a1", "body", "t1"): body})
    cache = ContentCache(path, KEY, source)
    assert not cache.copies_texts
    cache.store({"a1": ("d1", record("a1", "d1", "t1"))}, [("a1", "t1", None)], gone=())
    cache.close()
    assert stored_texts(path) == [("a1", "t1", None)]

    again = ContentCache(path, KEY, source)  # the next build
    assert again.records({"a1": "d1"})["a1"].texts[0].digest == "t1"
    assert again.text(LongText("a1", "body", "t1", 3)) == body
    assert source.asked == [("a1", "body", "t1")]
    again.close()


def test_without_a_source_the_cache_keeps_a_copy_of_each_text(tmp_path: Path) -> None:
    path = tmp_path / "content.sqlite3"
    cache = ContentCache(path, KEY)
    assert cache.copies_texts
    cache.store({"a1": ("d1", record("a1", "d1", "t1"))}, [("a1", "t1", "# Markdown")], gone=())
    cache.close()
    again = ContentCache(path, KEY)
    assert again.text(LongText("a1", "body", "t1", 1)) == "# Markdown"
    with pytest.raises(KeyError):
        again.text(LongText("a1", "body", "t2", 1))
    again.close()


def test_a_disabled_cache_reads_texts_from_the_source_and_holds_none(tmp_path: Path) -> None:
    source = Source({("a1", "body", "t1"): "from the store"})
    cache = ContentCache.disabled(source)
    cache.store({"a1": ("d1", record("a1", "d1", "t1"))}, [("a1", "t1", None)], gone=())
    assert cache.text(LongText("a1", "body", "t1", 3)) == "from the store"
    assert source.asked == [("a1", "body", "t1")]


def test_html_of_a_replaced_text_is_dropped_when_the_source_keeps_the_texts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "content.sqlite3"
    source = Source({})
    cache = ContentCache(path, KEY, source)
    cache.store({"a1": ("d1", record("a1", "d1", "t1"))}, [("a1", "t1", None)], gone=())
    cache.store_html([("k1", "t1", "<p>old</p>")])
    assert cache.html("k1") == "<p>old</p>"
    # The entry is republished with another body: the HTML made from the old one goes.
    cache.store({"a1": ("d2", record("a1", "d2", "t2"))}, [("a1", "t2", None)], gone=())
    assert cache.html("k1") is None
    assert stored_texts(path) == [("a1", "t2", None)]
    cache.close()


def test_a_cache_of_the_earlier_format_is_rebuilt_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "content.sqlite3"
    # What format 1 made: every text copied, its value NOT NULL; the same model and engine.
    db = sqlite3.connect(path)
    with db:
        db.executescript(
            """
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE entries (id TEXT PRIMARY KEY, digest TEXT NOT NULL, record BLOB);
            CREATE TABLE texts (
                entry_id TEXT NOT NULL, digest TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (entry_id, digest));
            CREATE TABLE html (key TEXT PRIMARY KEY, text_digest TEXT NOT NULL, body BLOB);
            INSERT INTO entries VALUES ('a1', 'd1', x'00');
            INSERT INTO texts VALUES ('a1', 't1', x'00');
            """
        )
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "1"), ("key", KEY)])
    db.close()
    assert FORMAT != 1
    cache = ContentCache(path, KEY, Source({}))
    assert cache.records({"a1": "d1"}) == {}
    assert cache.record("a1", "d1") is None
    cache.store({"a1": ("d1", record("a1", "d1", "t1"))}, [("a1", "t1", None)], gone=())
    cache.close()
    assert stored_texts(path) == [("a1", "t1", None)]
