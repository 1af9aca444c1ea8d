"""The build manifest: for each output file, a fingerprint of everything it was rendered from.

A rebuild renders only the outputs whose fingerprint changed. Records are kept per output
folder, identified by device and inode, because the live and spare folders trade places (see
writer.py): a folder the manifest does not know — missing or corrupt manifest, or a build killed
between its swap and saving the manifest — is treated as holding nothing, so the price of
damage is a full build, never a wrong one.

SQLite (WAL), one file per output folder. The live and spare folders hold nearly the same
files, so the manifest stores one list (`base`: output name → fingerprint, what the folder
last saved first holds) and, for each folder, only the names where it differs from that list.
A build that changes a few pages writes a few rows, not the site's 100,000 names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.config import RACY_NS
from headwater.model import Asset, Entry

log = logging.getLogger(__name__)

FORMAT = 2
MANIFEST_SUFFIX = ".manifest.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS base (name TEXT PRIMARY KEY, key TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folders (ident TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE IF NOT EXISTS differ (
    ident TEXT NOT NULL, name TEXT NOT NULL, key TEXT, PRIMARY KEY (ident, name)
) WITHOUT ROWID;
"""
# A folder has a row in `folders` only while it is known. `differ` holds its names whose
# fingerprint is not base's (key NULL: a name of base the folder does not hold).


FolderId = tuple[int, int]


@dataclass
class Manifest:
    """For each output folder (by device and inode): output path → fingerprint of its inputs."""

    stamps: dict[FolderId, list[Any]] = field(default_factory=dict)
    """Per folder: the signature of the inputs it was built from, and its page count."""
    store: _Store | None = None
    """Where it is saved (None: nowhere; `save` does nothing)."""
    _folders: dict[FolderId, dict[str, str]] | None = None

    @property
    def folders(self) -> dict[FolderId, dict[str, str]]:
        """Each known folder's outputs, read when first asked for (a build that finds its
        inputs unchanged reads only the stamps)."""
        if self._folders is None:
            self._folders = self.store.outputs() if self.store is not None else {}
        return self._folders

    def stamp(self, folder: Path) -> list[Any] | None:
        ident = folder_id(folder)
        return self.stamps.get(ident) if ident else None

    def size(self, folder: Path) -> int | None:
        """How many files folder is known to hold (None: unknown), without reading their
        names when they were not read yet."""
        ident = folder_id(folder)
        if ident is None:
            return None
        if self._folders is None and self.store is not None:
            return self.store.size(ident)
        outputs = self.folders.get(ident)
        return None if outputs is None else len(outputs)

    def outputs(self, folder: Path) -> dict[str, str] | None:
        """What folder is known to hold, or None when it is unknown."""
        ident = folder_id(folder)
        return self.folders.get(ident) if ident else None

    def record(self, folder: Path, outputs: dict[str, str] | None) -> None:
        ident = folder_id(folder)
        if ident is None:
            return
        self.stamps.pop(ident, None)
        if outputs is None:
            self.folders.pop(ident, None)
        else:
            self.folders[ident] = outputs

    def record_stamp(self, folder: Path, stamp: list[Any]) -> None:
        ident = folder_id(folder)
        if ident is not None:
            self.stamps[ident] = stamp

    def save(self, keep: Iterable[Path]) -> None:
        """Save what is known of the folders in keep (the first one's list becomes the base),
        in one transaction, before anything is done that relies on it; forget the others."""
        if self.store is not None:
            wanted = [i for i in (folder_id(p) for p in keep) if i is not None]
            self.store.save(self, list(dict.fromkeys(wanted)))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def folder_id(path: Path) -> FolderId | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def load_manifest(path: Path, engine: str) -> Manifest:
    """The saved manifest, or an empty one when it is missing, damaged or made by other code
    (then saving it starts the file again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The previous version's manifest (JSON, read and written whole) is not read: one full build.
    path.with_name(path.name.removesuffix(MANIFEST_SUFFIX) + ".json").unlink(missing_ok=True)
    try:
        return _Store(path, engine).load()
    except sqlite3.DatabaseError as exc:
        log.warning("ignoring the build manifest %s (%s): building everything", path, exc)
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        path.with_name(name).unlink(missing_ok=True)
    try:
        return _Store(path, engine).load()
    except sqlite3.DatabaseError as exc:  # not even a new file: keep nothing, build all
        log.warning("the build manifest %s cannot be written (%s)", path, exc)
        return Manifest()


class _Store:
    """The manifest's SQLite file, and the rows it holds as last read or written."""

    def __init__(self, path: Path, engine: str) -> None:
        self.engine = engine
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            # A folder is marked unknown before it is changed: that must reach the disk first.
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            self.db.close()
            raise
        self.base: dict[str, str] = {}
        self.differ: dict[FolderId, dict[str, str | None]] = {}
        self.stamps: dict[FolderId, list[Any] | None] = {}

    def close(self) -> None:
        self.db.close()

    def load(self) -> Manifest:
        db = self.db
        meta = dict(db.execute("SELECT name, value FROM meta"))
        if meta != {"format": str(FORMAT), "engine": self.engine}:
            with db:
                db.execute("BEGIN IMMEDIATE")
                for table in ("meta", "base", "folders", "differ"):
                    db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("format", str(FORMAT)), ("engine", self.engine)],
                )
            return Manifest(store=self)
        manifest = Manifest(store=self)
        for ident_text, stamp_text in db.execute("SELECT ident, stamp FROM folders"):
            ident = _folder_key(ident_text)
            stamp = json.loads(stamp_text) if stamp_text is not None else None
            self.stamps[ident] = stamp
            if stamp is not None:
                manifest.stamps[ident] = stamp
        return manifest

    def size(self, ident: FolderId) -> int | None:
        """A known folder's number of files, counted in the database."""
        if ident not in self.stamps:
            return None
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM base)"
            " + (SELECT count(*) FROM differ d WHERE d.ident = ?1 AND d.key IS NOT NULL"
            "    AND NOT EXISTS (SELECT 1 FROM base b WHERE b.name = d.name))"
            " - (SELECT count(*) FROM differ d WHERE d.ident = ?1 AND d.key IS NULL"
            "    AND EXISTS (SELECT 1 FROM base b WHERE b.name = d.name))",
            (_folder_text(ident),),
        ).fetchone()
        return int(row[0])

    def outputs(self) -> dict[FolderId, dict[str, str]]:
        """Each known folder's outputs: base, with the names where the folder differs."""
        db = self.db
        self.base = dict(db.execute("SELECT name, key FROM base"))
        found: dict[FolderId, dict[str, str]] = {}
        for ident in self.stamps:
            differ = dict(
                db.execute("SELECT name, key FROM differ WHERE ident = ?", (_folder_text(ident),))
            )
            self.differ[ident] = differ
            outputs = self.base
            if differ:
                outputs = dict(self.base)
                for name, key in differ.items():
                    if key is None:
                        outputs.pop(name, None)
                    else:
                        outputs[name] = key
            found[ident] = outputs
        return found

    def save(self, manifest: Manifest, wanted: list[FolderId]) -> None:
        known = [i for i in wanted if i in manifest.folders]
        base = manifest.folders[known[0]] if known else self.base
        # What to write: base's changed rows, and each folder's names that differ from it.
        upsert: list[tuple[str, str]] = []
        drop: list[tuple[str]] = []
        if base is not self.base:
            old = self.base
            upsert = [(n, k) for n, k in base.items() if old.get(n) != k]
            drop = [(n,) for n in old.keys() - base.keys()]
        differs = {i: _differ(manifest.folders[i], base) for i in known}
        stamps = {i: manifest.stamps.get(i) for i in known}
        db = self.db
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO base VALUES (?, ?)", upsert)
            db.executemany("DELETE FROM base WHERE name = ?", drop)
            for ident in self.stamps.keys() - set(known):
                text = _folder_text(ident)
                db.execute("DELETE FROM folders WHERE ident = ?", (text,))
                db.execute("DELETE FROM differ WHERE ident = ?", (text,))
            for ident in known:
                text = _folder_text(ident)
                if ident not in self.stamps or self.stamps[ident] != stamps[ident]:
                    stamp = json.dumps(stamps[ident]) if stamps[ident] is not None else None
                    db.execute("INSERT OR REPLACE INTO folders VALUES (?, ?)", (text, stamp))
                if self.differ.get(ident) != differs[ident]:
                    db.execute("DELETE FROM differ WHERE ident = ?", (text,))
                    db.executemany(
                        "INSERT INTO differ VALUES (?, ?, ?)",
                        [(text, n, k) for n, k in differs[ident].items()],
                    )
        self.base = base
        self.differ = differs
        self.stamps = stamps


def _differ(outputs: dict[str, str], base: dict[str, str]) -> dict[str, str | None]:
    """The names whose fingerprint in outputs is not base's (None: not in outputs)."""
    if outputs is base:
        return {}
    found: dict[str, str | None] = {n: k for n, k in outputs.items() if base.get(n) != k}
    found.update((n, None) for n in base.keys() - outputs.keys())
    return found


def _folder_key(text: str) -> FolderId:
    dev, ino = (int(n) for n in text.split(":"))
    return (dev, ino)


def _folder_text(ident: FolderId) -> str:
    return f"{ident[0]}:{ident[1]}"


def signature_of(folders: Iterable[Path], extra: str) -> str | None:
    """A hash of every file's name, size, timestamps and inode below folders: any edit, touch,
    rename or replacement changes it (the kernel moves ctime on every write). None when a file
    changed so recently that a second change in the same clock tick could go unnoticed."""
    h = hashlib.blake2b(extra.encode(), digest_size=16)
    newest = 0
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                st = os.stat(path)
                newest = max(newest, st.st_ctime_ns, st.st_mtime_ns)
                h.update(
                    f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode()
                )
    if newest >= time.time_ns() - RACY_NS:
        return None
    return h.hexdigest()


def digest_files(paths: Iterable[Path], root: Path) -> str:
    """One hash over several files' names and bytes (the theme, say)."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(paths):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def entry_version(entry_id: str, digest: str, url: str | None) -> str:
    """Which version of an entry a deep digest was made from (Fingerprinter.deep)."""
    return f"{entry_id}\x1f{digest}\x1f{url or ''}"


class Fingerprinter:
    """Hashes what a page shows: entries (with what they link to), assets, plain data.

    An entry's deep digest covers its own content (its source's digest, its URL, the assets it
    shows) and the content of every entry and asset it links to directly, in its fields or in
    its RichText body — as far as a template reaches from a page's context (an article's card
    shows its topics' names; an article page shows its author's credentials and the titles of
    the entries its body embeds).
    """

    def __init__(
        self,
        base: str,
        plain_types: tuple[type, ...] = (),
        resolve: Callable[[str], str] | None = None,
        known: Mapping[str, tuple[str, str]] | None = None,
        version_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.base = base
        self.resolve = resolve
        """Where a body's link leads now: a body linking to a moved page shows its address."""
        self._shallow: dict[str, str] = {}
        self._deep: dict[str, str] = {}
        # Values whose repr shows all they hold and that hold no entry: hashed by repr, which
        # is far cheaper than taking them apart (pagination, sitemap rows, dates, text).
        self._plain = (str, int, bool, type(None), dt.date, *plain_types)
        self._known = known if known is not None else {}  # (a lazy mapping: never counted)
        self._version_of = version_of
        self.fresh: dict[str, tuple[str, str]] = {}
        """The deep digests worked out here, with what each was made of (see `deep`)."""

    def route_key(self, parts: tuple[Any, ...]) -> str:
        h = hashlib.blake2b(self.base.encode(), digest_size=16)
        h.update(self._canonical(parts).encode())
        return h.hexdigest()

    def page_key(
        self,
        settings: str,
        plain: tuple[str | int | bool | dt.date | None, ...],
        image: Asset | None,
        context: dict[str, Any],
    ) -> str:
        """route_key for the usual shape of a page, quickly: plain values (one repr for all),
        an image, and a context whose values are mostly entries and lists of entries."""
        parts = [self.base, settings, repr(plain), _asset_text(image) if image else "-"]
        deep = self.deep
        plain_types = self._plain
        for name in sorted(context):
            value = context[name]
            kind = type(value)
            if kind is Entry:
                parts.append(f"{name}:E{deep(value)}")
            elif kind is list and all(type(v) is Entry for v in value):
                parts.append(f"{name}:[" + ",".join([deep(v) for v in value]) + "]")
            elif kind in plain_types or (
                kind is list and all(type(v) in plain_types for v in value)
            ):
                parts.append(f"{name}:{value!r}")
            else:
                parts.append(f"{name}:{self._canonical(value)}")
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()

    def deep(self, entry: Entry) -> str:
        """An entry's deep digest. One an earlier build worked out (`known`: id → digest and
        the versions it was made of) is taken as it is while the entry and every entry it
        links to are the versions they were then (`version_of`: an entry's digest and URL now),
        without reading the entry's fields; a build that uses this keeps the theme, the assets
        and where every page is as they were (siteindex.py), and the rest of a deep digest
        (assets shown, where body links lead) follows from those."""
        found = self._deep.get(entry.id)
        if found is None:
            stored = self._known.get(entry.id)
            if stored is not None and self._still(entry, stored[1]):
                found = self._deep[entry.id] = stored[0]
                return found
            shallow = self.shallow
            linked = sorted(
                {shallow(v) if isinstance(v, Entry) else _asset_text(v) for v in entry._linked}
            )
            text = shallow(entry) + "\x1e" + "\x1d".join(linked)
            found = self._deep[entry.id] = hashlib.blake2b(
                text.encode(), digest_size=16
            ).hexdigest()
            linked_versions = {
                entry_version(v.id, v.digest, v.url) for v in entry._linked if type(v) is Entry
            }
            made_of = entry_version(entry.id, entry.digest, entry.url) + "\x1e"
            self.fresh[entry.id] = (found, made_of + "\x1d".join(sorted(linked_versions)))
        return found

    def _still(self, entry: Entry, made_of: str) -> bool:
        """Whether the entry and those it linked to are still the versions in made_of."""
        version_of = self._version_of
        if version_of is None:
            return False
        own, _, linked = made_of.partition("\x1e")
        if own != entry_version(entry.id, entry.digest, entry.url):
            return False
        for version in linked.split("\x1d") if linked else ():
            entry_id = version.partition("\x1f")[0]
            if version_of(entry_id) != version:
                return False
        return True

    def shallow(self, entry: Entry) -> str:
        """An entry's own content: its source's digest, its URL and the assets it shows (as
        text: only deep digests are hashed)."""
        found = self._shallow.get(entry.id)
        if found is None:
            parts = [entry.id, entry.content_type, entry.url or "", entry.digest]
            parts += [_asset_text(v) for v in entry._linked if type(v) is Asset]
            if entry._links and self.resolve is not None:
                # Where its body links lead: a page it links to may have moved.
                parts += [self.resolve(link) for link in entry._links]
            found = self._shallow[entry.id] = "\x1f".join(parts)
        return found

    def _canonical(self, value: Any) -> str:
        kind = type(value)
        if kind is Entry:
            return "E" + self.deep(value)
        if kind is str or kind is int or kind is bool or value is None:
            return repr(value)
        if kind is list or kind is tuple:
            return "[" + ",".join([self._canonical(v) for v in value]) + "]"
        if kind is dict:
            items = sorted(value.items())
            return "{" + ",".join([f"{k}:{self._canonical(v)}" for k, v in items]) + "}"
        if kind is Asset:
            return "A" + _asset_text(value)
        if kind is dt.date:
            return str(value.isoformat())
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
            return kind.__name__ + self._canonical(fields)
        return repr(value)


def _asset_text(asset: Asset) -> str:
    a = asset
    return repr((a.id, a.url, a.alt, a.title, a.mime, a.width, a.height))
