"""Read the local Markdown snapshot in `content/` into a Snapshot."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import pickle
import re
import struct
import time
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from headwater.config import RACY_NS
from headwater.model import ASSET, Asset, Entry, Link, Problem, Snapshot

log = logging.getLogger(__name__)

SETTINGS_FILE = "siteSettings.yml"
SETTINGS_TYPE = "siteSettings"


ParseCache = dict[str, tuple[tuple[int, int, int, int], bytes, dict[str, Any], str]]
CACHE_FORMAT = 2


def load_snapshot(content_dir: Path, cache_file: Path | None = None) -> Snapshot:
    """Read every entry file and the images they name; collect problems instead of raising.

    With cache_file, parsed files are kept: a file whose size, timestamps and inode are
    unchanged is not read again, and one whose content hash is unchanged is not parsed again.
    """
    snapshot = Snapshot(description=f"local content in {content_dir.name}/")
    if not content_dir.is_dir():
        snapshot.problems.append(
            Problem(str(content_dir), "", "source", "the content folder does not exist")
        )
        return snapshot
    reader = _Reader(snapshot, content_dir, _load_cache(cache_file) if cache_file else {})
    for type_dir in sorted(p for p in content_dir.iterdir() if p.is_dir()):
        # Sorted as strings: comparing 10,000 Path objects costs more than reading their names.
        for name in sorted(n for n in os.listdir(type_dir) if n.endswith(".md")):
            reader.read_entry(type_dir / name, type_dir.name)
    settings = content_dir / SETTINGS_FILE
    if settings.is_file():
        reader.read_entry(settings, SETTINGS_TYPE)
    if cache_file and reader.used != reader.cache:
        _save_cache(cache_file, reader.used)
    return snapshot


class _Reader:
    """One pass over content/: the snapshot it fills, and what it has already looked up."""

    def __init__(self, snapshot: Snapshot, content_dir: Path, cache: ParseCache) -> None:
        self.snapshot = snapshot
        self.content_dir = content_dir
        self.root = content_dir.resolve()
        self.cache = cache
        self.used: ParseCache = {}
        self.files: dict[str, Path | None] = {}
        self.started = time.time_ns()

    def read_entry(self, path: Path, content_type: str) -> None:
        origin = path.relative_to(self.content_dir.parent).as_posix()
        problems = self.snapshot.problems
        try:
            stat = path.stat()
            # Like git's index: size, both timestamps and inode all unchanged means the same
            # bytes (ctime moves on every write, whatever a tool does to mtime); otherwise the
            # content hash decides whether the parse can be reused.
            signature = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
            cached = self.cache.get(origin)
            racy = max(stat.st_ctime_ns, stat.st_mtime_ns) >= self.started - RACY_NS
            if cached and cached[0] == signature and not racy:
                _, digest, metadata, body = cached
            else:
                raw = path.read_bytes()
                digest = hashlib.blake2b(raw, digest_size=16).digest()
                if cached and cached[1] == digest:
                    metadata, body = cached[2], cached[3]
                else:
                    metadata, body = _parse(raw.decode("utf-8"), path.suffix)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(origin, "", "readable", f"cannot read the file: {exc}"))
            return
        except yaml.YAMLError as exc:
            problems.append(
                Problem(origin, "(front matter)", "yaml", f"malformed YAML: {_yaml_reason(exc)}")
            )
            return
        if not isinstance(metadata, dict):
            problems.append(
                Problem(
                    origin, "(front matter)", "yaml", "front matter must be a mapping of fields"
                )
            )
            return
        self.used[origin] = (signature, digest, metadata, body)
        fields = {str(k): self.convert(origin, str(k), v) for k, v in metadata.items()}
        if body.strip():
            fields["body"] = body.strip() + "\n"
        if content_type != SETTINGS_TYPE:
            fields.setdefault("slug", path.stem)
        entry_id = f"{content_type}/{path.stem}" if content_type != SETTINGS_TYPE else SETTINGS_TYPE
        self.snapshot.entries.append(
            Entry(
                id=entry_id,
                content_type=content_type,
                fields=fields,
                origin=origin,
                digest=digest.hex(),
            )
        )

    def convert(self, origin: str, key: str, value: Any) -> Any:
        """Image mappings become asset links; lists are converted item by item."""
        if isinstance(value, list):
            return [self.convert(origin, key, item) for item in value]
        if isinstance(value, dict) and "file" in value:
            asset = self.read_asset(origin, key, value)
            return Link(ASSET, asset.id) if asset else None
        return value

    def read_asset(self, origin: str, key: str, value: dict[str, Any]) -> Asset | None:
        """The asset for an image mapping; each distinct alt text is an asset of its own."""
        name = str(value.get("file", ""))
        if name not in self.files:
            resolved = (self.content_dir / name).resolve()
            inside = resolved.is_relative_to(self.root) and resolved.is_file()
            self.files[name] = resolved if inside else None
        path = self.files[name]
        if path is None:
            self.snapshot.problems.append(
                Problem(origin, key, "file", "the image file does not exist inside content/", name)
            )
            return None
        alt = value.get("alt")
        alt = alt.strip() if isinstance(alt, str) else ""
        title = str(value.get("title") or path.stem)
        relative = path.relative_to(self.root).as_posix()
        asset_id = relative if (alt, title) == ("", path.stem) else f"{relative}#{alt}|{title}"
        if asset_id not in self.snapshot.assets:
            width, height = image_size(path)
            self.snapshot.assets[asset_id] = Asset(
                id=asset_id,
                title=title,
                alt=alt,
                mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                source=str(path),
                width=width,
                height=height,
                size=path.stat().st_size,
            )
        return self.snapshot.assets[asset_id]


def _parse(text: str, suffix: str) -> tuple[Any, str]:
    if suffix == ".md":
        post = frontmatter.loads(text)
        return post.metadata, post.content
    return yaml.load(text, Loader=_Loader) or {}, ""


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_cache(path: Path) -> ParseCache:
    try:
        with path.open("rb") as file:
            data = pickle.load(file)
        if data.get("format") == CACHE_FORMAT:
            return dict(data["files"])
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged cache only costs a re-parse
        log.warning("ignoring the parse cache %s: %s", path, exc)
    return {}


def _save_cache(path: Path, files: ParseCache) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with temporary.open("wb") as file:
        pickle.dump(
            {"format": CACHE_FORMAT, "files": files}, file, protocol=pickle.HIGHEST_PROTOCOL
        )
    os.replace(temporary, path)


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        # The front matter starts after the opening '---' line.
        return f"{problem} at line {mark.line + 2}, column {mark.column + 1}"
    return str(problem)


_SVG_SIZE = re.compile(rb"<svg\b[^>]*>", re.S)
_SVG_ATTR = re.compile(rb'\b(width|height|viewBox)\s*=\s*"([^"]*)"')


def image_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height in pixels of a PNG, GIF, JPEG or SVG file, or (None, None)."""
    head = path.read_bytes()[:65536]
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    match = _SVG_SIZE.search(head)
    if path.suffix == ".svg" and match:
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
