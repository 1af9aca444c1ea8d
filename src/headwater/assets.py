"""Give static files and content images their published, content-hashed names."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from headwater.model import Asset

HASH_LENGTH = 10


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]


def hashed_name(relative: str, digest: str) -> str:
    """'css/site.css' -> 'css/site.0123456789.css'."""
    pure = PurePosixPath(relative)
    return str(pure.with_name(f"{pure.stem}.{digest}{pure.suffix}"))


def plan_static(static_dir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """Map each static file's name to its published URL, and each output path to its source."""
    urls: dict[str, str] = {}
    files: dict[str, Path] = {}
    if not static_dir.is_dir():
        return urls, files
    for path in sorted(p for p in static_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(static_dir).as_posix()
        output = "static/" + hashed_name(relative, fingerprint(path))
        urls[relative] = "/" + output
        files[output] = path
    return urls, files


def plan_media(assets: Iterable[Asset]) -> dict[str, Path]:
    """Each local asset's output path (its URL, which carries its content hash) → source file."""
    return {a.url.lstrip("/"): Path(a.source) for a in assets if a.is_local}
