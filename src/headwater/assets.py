"""Give static files and content images their published, content-hashed names."""

from __future__ import annotations

import hashlib
import re
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


def plan_static(static_dir: Path) -> tuple[dict[str, str], dict[str, Path | bytes]]:
    """Map each static file's name to its published URL, and each output path to its source
    (stylesheets to their minified bytes)."""
    urls: dict[str, str] = {}
    files: dict[str, Path | bytes] = {}
    if not static_dir.is_dir():
        return urls, files
    for path in sorted(p for p in static_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(static_dir).as_posix()
        output = "static/" + hashed_name(relative, fingerprint(path))
        urls[relative] = "/" + output
        files[output] = path
        if path.suffix == ".css":
            files[output] = minify_css(path.read_text(encoding="utf-8")).encode()
    return urls, files


_CSS_STRING = re.compile(r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_SPACE = re.compile(r"\s+")
_CSS_AROUND = re.compile(r" ?([{};,]) ?")
_CSS_COLON = re.compile(r": ")


def minify_css(text: str) -> str:
    """The stylesheet without comments and the whitespace a browser ignores; strings as they
    are. Only whitespace that separates nothing goes: around braces, semicolons and commas,
    and after a declaration's colon (a selector's pseudo-class has no space after its colon)."""
    parts = _CSS_STRING.split(_CSS_COMMENT.sub("", text))
    for i in range(0, len(parts), 2):  # the even parts are outside strings
        code = _CSS_SPACE.sub(" ", parts[i])
        parts[i] = _CSS_COLON.sub(":", _CSS_AROUND.sub(r"\1", code)).replace(";}", "}")
    return "".join(parts).strip() + "\n"


def plan_media(assets: Iterable[Asset]) -> dict[str, Path]:
    """Each local asset's output path (its URL, which carries its content hash) → source file."""
    return {a.url.lstrip("/"): Path(a.source) for a in assets if a.is_local}
