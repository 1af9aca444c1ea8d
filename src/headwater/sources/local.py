"""Read the local Markdown snapshot in `content/`: entry heads by file digest, fields on demand.

Every file is looked at with one `stat`; only files whose size, timestamps or inode changed
since the last build are read, and only files whose bytes changed are parsed (git's index rule:
ctime moves on every write, whatever a tool does to mtime, and a file changed in the last two
seconds is never trusted to be unchanged). What a build needs of an unchanged file — its
digest and the images it names — comes from a small index in `.cache/headwater/`.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import pickle
import re
import struct
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import yaml

from headwater.config import RACY_NS
from headwater.links import content_path, is_relative, markdown_links
from headwater.model import (
    ASSET,
    Asset,
    EntryHead,
    Link,
    Problem,
    RawEntry,
    Snapshot,
    local_asset_id,
)
from headwater.parallel import run_sharded

log = logging.getLogger(__name__)

SETTINGS_FILE = "siteSettings.yml"
SETTINGS_TYPE = "siteSettings"
INDEX_FORMAT = 5
HASH_LENGTH = 10
PARALLEL_FROM = 200
"""Parse in several processes when at least this many files changed (a cold build)."""

Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageUse:
    """An image a file names in its front matter: which file, with which alt text and title,
    in which field."""

    file: str
    alt: str
    title: str | None
    field: str
    line: int | None = None


class FileRecord(NamedTuple):
    """What the index remembers of one entry file (a tuple: the index holds one per file)."""

    signature: Signature
    digest: str
    images: tuple[ImageUse, ...]
    draft: bool = False


@dataclass(frozen=True)
class ImageRecord:
    signature: Signature
    hash: str
    width: int | None
    height: int | None
    size: int


@dataclass
class _Index:
    files: dict[str, FileRecord]
    images: dict[str, ImageRecord]


def load_snapshot(
    content_dir: Path,
    index_file: Path | None = None,
    slugged: frozenset[str] = frozenset({"article", "author", "page", "topic"}),
    *,
    drafts: bool = False,
) -> Snapshot:
    """Look at every entry file; parse those that changed since index_file was written.

    An entry of a type in `slugged` (types with a slug field) takes its file's name as its slug
    unless its front matter gives one. A file with `draft: true` is left out unless `drafts`
    (a preview). Problems (unreadable files, malformed YAML, missing images) go in the
    snapshot's problems.
    """
    reader = _Reader(content_dir, _load_index(index_file), slugged, drafts)
    heads = reader.scan()
    assets = reader.assets()
    if index_file is not None and reader.index_changed:
        _save_index(index_file, reader.index)
    return Snapshot(
        description=f"local content in {content_dir.name}/" + (" with drafts" if drafts else ""),
        heads=heads,
        reader=reader,
        assets=assets,
        problems=reader.problems,
        broken=frozenset(reader.broken),
        signature=reader.signature(),
    )


class _Reader:
    """One pass over content/: the index it keeps up to date, and the entries it parsed."""

    def __init__(
        self, content_dir: Path, index: _Index, slugged: frozenset[str], drafts: bool
    ) -> None:
        self.content_dir = content_dir
        self.slugged = slugged
        self.drafts = drafts
        self.root = content_dir.resolve()
        self.old = index
        self.index = _Index({}, {})
        self.index_changed = False
        self.parsed: dict[str, RawEntry] = {}
        self.problems: list[Problem] = []
        self.broken: set[str] = set()
        """Ids, slugs and assets known to be unreadable, already reported."""
        self.racy = False
        self.changed: list[_Change] = []
        self.started = time.time_ns()

    def scan(self) -> dict[str, EntryHead]:
        heads: dict[str, EntryHead] = {}
        if not self.content_dir.is_dir():
            self.problems.append(
                Problem(str(self.content_dir), "", "source", "the content folder does not exist")
            )
            return heads
        prefix = self.content_dir.name
        with os.scandir(self.content_dir) as found:
            folders = sorted(e.name for e in found if e.is_dir() and not e.name.startswith("."))
        root = str(self.content_dir)
        for content_type in folders:
            folder = f"{root}/{content_type}"
            # Strings, not Path objects: building 10,000 paths costs more than their stat calls.
            for name in sorted(n for n in os.listdir(folder) if n.endswith(".md")):
                origin = f"{prefix}/{content_type}/{name}"
                entry_id = f"{content_type}/{name[:-3]}"
                self.look(f"{folder}/{name}", origin, entry_id, content_type, heads)
        settings = f"{root}/{SETTINGS_FILE}"
        if os.path.isfile(settings):
            self.look(settings, f"{prefix}/{SETTINGS_FILE}", SETTINGS_TYPE, SETTINGS_TYPE, heads)
        self.parse_changed(heads)
        self.index_changed |= self.index.files.keys() != self.old.files.keys()
        return heads

    def parse_changed(self, heads: dict[str, EntryHead]) -> None:
        """Parse the files whose bytes changed, in several processes when there are many."""
        todo, self.changed = self.changed, []
        results = run_sharded(_parse_shard, todo, workers=0 if len(todo) < PARALLEL_FROM else None)
        for change, result in zip(todo, results, strict=True):
            if isinstance(result, Problem):
                self.problems.append(result)
                self.broken |= {change.entry_id, change.path.stem}
                del heads[change.entry_id]
                continue
            raw, images, draft = result
            record = FileRecord(change.signature, change.digest, images, draft)
            self.index.files[change.origin] = record
            if draft and not self.drafts:
                del heads[change.entry_id]
            else:
                self.parsed[change.entry_id] = raw

    def signature(self) -> str | None:
        """A digest of every file's stat (entries and images), None if one is too recent to
        trust or one could not be read: anything that writes a file changes it."""
        if self.racy or self.problems:
            return None
        h = hashlib.blake2b(digest_size=16)
        for origin, record in self.index.files.items():
            h.update(f"{origin}\0{record.signature}\n".encode())
        for name, image in sorted(self.index.images.items()):
            h.update(f"{name}\0{image.signature}\n".encode())
        return h.hexdigest()

    def look(
        self, path: str, origin: str, entry_id: str, content_type: str, heads: dict[str, EntryHead]
    ) -> None:
        try:
            stat = os.stat(path)
            signature = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
            old = self.old.files.get(origin)
            racy = max(stat.st_ctime_ns, stat.st_mtime_ns) >= self.started - RACY_NS
            self.racy |= racy
            if old is not None and old[0] == signature and not racy:
                self.index.files[origin] = old
                if self.drafts or not old.draft:
                    heads[entry_id] = EntryHead(entry_id, content_type, old[1], origin)
                return
            with open(path, "rb") as file:
                data = file.read()
        except OSError as exc:
            self.problems.append(Problem(origin, "", "readable", f"cannot read the file: {exc}"))
            return
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        self.index_changed = True
        if old is not None and old[1] == digest:
            self.index.files[origin] = FileRecord(signature, digest, old.images, old.draft)
            if self.drafts or not old.draft:
                heads[entry_id] = EntryHead(entry_id, content_type, digest, origin)
            return
        heads[entry_id] = EntryHead(entry_id, content_type, digest, origin)
        change = _Change(
            data, Path(path), origin, entry_id, content_type, digest, signature, self.slugged
        )
        self.changed.append(change)

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        """Entries by id: those parsed while scanning, and unchanged ones parsed now."""
        found: dict[str, RawEntry] = {}
        for entry_id in ids:
            raw = self.parsed.get(entry_id) or self._parse_unchanged(entry_id)
            if raw is not None:
                found[entry_id] = raw
        return found

    def _parse_unchanged(self, entry_id: str) -> RawEntry | None:
        """An entry whose file was not parsed while scanning (its bytes were known)."""
        if entry_id == SETTINGS_TYPE:
            path, content_type = self.content_dir / SETTINGS_FILE, SETTINGS_TYPE
        else:
            content_type, _, stem = entry_id.partition("/")
            path = self.content_dir / content_type / f"{stem}.md"
        origin = f"{self.content_dir.name}/{path.relative_to(self.content_dir).as_posix()}"
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.problems.append(Problem(origin, "", "readable", f"cannot read the file: {exc}"))
            return None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        parsed = parse_file(data, path, origin, entry_id, content_type, digest, self.slugged)
        if isinstance(parsed, Problem):
            self.problems.append(parsed)
            return None
        raw: RawEntry = parsed[0]
        self.parsed[entry_id] = raw
        return raw

    def assets(self) -> dict[str, Asset]:
        """Every image the entries name, each distinct (file, alt, title) an asset of its own."""
        assets: dict[str, Asset] = {}
        for origin, record in self.index.files.items():
            if record.draft and not self.drafts:
                continue  # a draft's images are published with it, not before
            for use in record.images:
                asset_id = _asset_id(use)
                if asset_id in assets:
                    continue
                asset = self.image(use, asset_id)
                if asset is not None:
                    assets[asset_id] = asset
                elif asset_id not in self.broken:
                    self.broken.add(asset_id)
                    self.problems.append(
                        Problem(
                            origin,
                            use.field,
                            "file",
                            "the image file does not exist inside content/",
                            use.file,
                            use.line,
                        )
                    )
        self.index_changed |= self.index.images.keys() != self.old.images.keys()
        return assets

    def image(self, use: ImageUse, asset_id: str) -> Asset | None:
        path = (self.content_dir / use.file).resolve()
        relative = use.file
        try:
            inside = path.is_relative_to(self.root) and path.is_file()
            stat = path.stat() if inside else None
        except OSError:
            inside, stat = False, None
        if not inside or stat is None:
            return None
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        record = self.index.images.get(relative) or self.old.images.get(relative)
        racy = max(stat.st_ctime_ns, stat.st_mtime_ns) >= self.started - RACY_NS
        self.racy |= racy
        if record is None or record.signature != signature or racy:
            data = path.read_bytes()
            width, height = image_size(data, path.suffix)
            record = ImageRecord(
                signature,
                hashlib.sha256(data).hexdigest()[:HASH_LENGTH],
                width,
                height,
                len(data),
            )
            self.index_changed = True
        self.index.images[relative] = record
        pure = PurePosixPath(path.name)
        return Asset(
            id=asset_id,
            title=use.title or path.stem,
            alt=use.alt,
            mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            source=str(path),
            url=f"/media/{pure.stem}.{record.hash}{pure.suffix}",
            width=record.width,
            height=record.height,
            size=record.size,
        )


@dataclass(frozen=True)
class _Change:
    """A file whose bytes are new to the index: to be parsed."""

    data: bytes
    path: Path
    origin: str
    entry_id: str
    content_type: str
    digest: str
    signature: Signature
    slugged: frozenset[str]


Parsed = tuple[RawEntry, tuple[ImageUse, ...], bool]
"""A parsed entry file: its raw entry, the images it names, and whether it is a draft."""


def _parse_shard(changes: Sequence[_Change]) -> list[Parsed | Problem]:
    return [
        parse_file(c.data, c.path, c.origin, c.entry_id, c.content_type, c.digest, c.slugged)
        for c in changes
    ]


def parse_file(
    data: bytes,
    path: Path,
    origin: str,
    entry_id: str,
    content_type: str,
    digest: str,
    slugged: frozenset[str],
) -> Parsed | Problem:
    """An entry file's fields, the images it names and whether it is a draft (`draft: true`
    in its front matter), or the problem that stops reading it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(origin, "", "readable", f"not UTF-8 text: {exc}")
    try:
        metadata, lines, body = split_front_matter(text, front_matter=path.suffix == ".md")
    except yaml.YAMLError as exc:
        message, line = _yaml_reason(exc, offset=1 if path.suffix == ".md" else 0)
        return Problem(origin, "(front matter)", "yaml", f"malformed YAML: {message}", line=line)
    if not isinstance(metadata, dict):
        return Problem(origin, "(front matter)", "yaml", "front matter must be a mapping of fields")
    draft = metadata.pop("draft", False)
    if not isinstance(draft, bool):
        return Problem(origin, "draft", "type", "must be true or false", draft, lines.get("draft"))
    images: list[ImageUse] = []
    fields = {str(k): _convert(v, str(k), images) for k, v in metadata.items()}
    if body.strip():
        fields["body"] = body.strip() + "\n"
        # Images in the body are published like the front matter's (content-hashed).
        first = lines["body"]
        images += [
            ImageUse(content_path(link.target), link.alt, link.title, "body", first + link.line - 1)
            for link in markdown_links(fields["body"])
            if link.image and is_relative(link.target)
        ]
    if content_type in slugged:
        fields.setdefault("slug", path.stem)
    return RawEntry(entry_id, content_type, fields, origin, digest, lines), tuple(images), draft


def _asset_id(use: ImageUse) -> str:
    return local_asset_id(use.file, use.alt, use.title)


def _convert(value: Any, name: str, images: list[ImageUse]) -> Any:
    """Image mappings become asset links (noted in images); lists convert item by item."""
    if isinstance(value, list):
        return [_convert(item, name, images) for item in value]
    if isinstance(value, dict) and "file" in value:
        alt, title = value.get("alt"), value.get("title")
        use = ImageUse(
            file=os.path.normpath(str(value.get("file", ""))).replace(os.sep, "/"),
            alt=alt.strip() if isinstance(alt, str) else "",
            title=str(title) if title else None,
            field=name,
        )
        images.append(use)
        return Link(ASSET, _asset_id(use))
    return value


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader, but dates stay text: the schema checks them and reports a bad one
    (2026-13-45) as a problem with the file and field, where YAML would raise."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_FENCE = re.compile(r"^(?:-{3,}|\.{3})[ \t]*$", re.M)


def split_front_matter(text: str, *, front_matter: bool) -> tuple[Any, dict[str, int], str]:
    """(YAML data, line of each top-level key, body) of a Markdown file, or of a YAML file
    when front_matter is False. The body's first non-blank line is `lines["body"]`."""
    if not front_matter:
        return *_load_yaml(text, first_line=1), ""
    if not text.startswith("---"):
        return {}, {"body": 1 + _leading_lines(text)}, text
    first = text.find("\n")
    if first == -1 or text[:first].strip("- \t\r"):
        return {}, {"body": 1 + _leading_lines(text)}, text
    closing = _FENCE.search(text, first + 1)
    if closing is None:
        return {}, {"body": 1 + _leading_lines(text)}, text
    data, lines = _load_yaml(text[first + 1 : closing.start()], first_line=2)
    body = text[closing.end() :]
    lines["body"] = text.count("\n", 0, closing.end()) + 1 + _leading_lines(body)
    return data, lines, body.lstrip("\r\n")


def _leading_lines(text: str) -> int:
    """How many line breaks come before the first line with text (which strip() removes)."""
    stripped = text.lstrip()
    return text.count("\n", 0, len(text) - len(stripped))


def _load_yaml(text: str, first_line: int) -> tuple[Any, dict[str, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            lines[str(key.value)] = key.start_mark.line + first_line
    return data if data is not None else {}, lines


def _yaml_reason(exc: yaml.YAMLError, offset: int) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        line = mark.line + 1 + offset
        return f"{problem} at line {line}, column {mark.column + 1}", line
    return str(problem), None


def _load_index(path: Path | None) -> _Index:
    if path is None:
        return _Index({}, {})
    try:
        with path.open("rb") as file:
            data = pickle.load(file)
        if data.get("format") == INDEX_FORMAT:
            return _Index(dict(data["files"]), dict(data["images"]))
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged index only costs reading every file again
        log.warning("ignoring the content index %s: %s", path, exc)
    return _Index({}, {})


def _save_index(path: Path, index: _Index) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    data = {"format": INDEX_FORMAT, "files": index.files, "images": index.images}
    with temporary.open("wb") as file:
        pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, path)


_SVG_SIZE = re.compile(rb"<svg\b[^>]*>", re.S)
_SVG_ATTR = re.compile(rb'\b(width|height|viewBox)\s*=\s*"([^"]*)"')


def image_size(data: bytes, suffix: str = "") -> tuple[int | None, int | None]:
    """Width and height in pixels of a PNG, GIF, JPEG or SVG file's bytes, or (None, None)."""
    head = data[:65536]
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    match = _SVG_SIZE.search(head)
    if suffix == ".svg" and match:
        attrs = {k.decode(): v.decode() for k, v in _SVG_ATTR.findall(match.group(0))}
        try:
            if "width" in attrs and "height" in attrs:
                return int(float(attrs["width"])), int(float(attrs["height"]))
            if "viewBox" in attrs:
                _, _, w, h = (float(n) for n in attrs["viewBox"].replace(",", " ").split())
                return int(w), int(h)
        except ValueError:
            pass
    return None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None, None
