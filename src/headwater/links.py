"""Find the links and images in a body — Markdown or RichText — so they are checked like fields.

Markdown is read for inline links and images (`[text](href)`, `![alt](src "title")`),
reference definitions (`[name]: href`) and autolinks (`<https://…>`), outside code spans and
fenced or indented code. Each is reported with its line, counted from the body's first line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from html import escape, unescape
from typing import Any


@dataclass(frozen=True)
class BodyLink:
    """One link or image of a body."""

    target: str
    image: bool
    line: int
    """The line in the body, 1 for its first; 0 when the body has no lines (RichText)."""
    alt: str = ""
    title: str | None = None


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.S)
# [text](target "title") and ![alt](target "title"); text may hold one level of brackets.
_INLINE = re.compile(
    r"(!?)\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
    r"(?:\s+(\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
_DEFINITION = re.compile(r"^ {0,3}\[([^\]\n]+)\]:\s*(<[^>\n]*>|\S+)(?:\s+.*)?$")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^\s<>]*)>")


def markdown_links(text: str) -> list[BodyLink]:
    """Every link and image of a Markdown text, in order."""
    found: list[BodyLink] = []
    in_fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if "[" not in line and "<" not in line and "`" not in line and "~" not in line:
            continue  # no link, fence or code span starts or ends on this line
        fence = _FENCE.match(line)
        if in_fence is not None:
            if fence and fence.group(1)[0] == in_fence[0] and len(fence.group(1)) >= len(in_fence):
                in_fence = None
            continue
        if fence:
            in_fence = fence.group(1)
            continue
        if line.startswith(("    ", "\t")) and not line.strip().startswith(("-", "*", "+")):
            continue  # indented code (list continuations aside)
        visible = _CODE_SPAN.sub(_blank, line) if "`" in line else line
        definition = _DEFINITION.match(visible)
        if definition:
            found.append(BodyLink(_unbracket(definition.group(2)), False, number))
            continue
        for match in _INLINE.finditer(visible):
            title = match.group(4)
            found.append(
                BodyLink(
                    _unbracket(match.group(3)),
                    image=match.group(1) == "!",
                    line=number,
                    alt=match.group(2).strip(),
                    title=title[1:-1] if title else None,
                )
            )
        if "<" in visible:
            found += [BodyLink(m.group(1), False, number) for m in _AUTOLINK.finditer(visible)]
    return found


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group(0))


def _unbracket(target: str) -> str:
    return target[1:-1] if target.startswith("<") and target.endswith(">") else target


def richtext_links(document: Mapping[str, Any]) -> list[BodyLink]:
    """Every plain hyperlink of a RichText document (entry and asset links are references)."""
    return [BodyLink(uri, False, 0) for uri in _hyperlinks(document)]


def _hyperlinks(node: Mapping[str, Any]) -> Iterator[str]:
    if node.get("nodeType") == "hyperlink":
        data = node.get("data")
        uri = data.get("uri") if isinstance(data, dict) else None
        if isinstance(uri, str):
            yield uri
    content = node.get("content")
    if isinstance(content, list):
        for child in content:
            if isinstance(child, dict):
                yield from _hyperlinks(child)


def is_internal(target: str) -> bool:
    """An address on this site: a path from its root (not //host, not a scheme, not #)."""
    return target.startswith("/") and not target.startswith("//")


def is_relative(target: str) -> bool:
    """A path relative to the page it is on (`other-page/`, `../x`): fragile, so refused."""
    return bool(target) and not re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|/|#|\?)", target)


def content_path(target: str) -> str:
    """An image path as written in a local body (relative to content/), as asset ids name it."""
    return posixpath.normpath(target.replace("\\", "/"))


def path_of(target: str) -> str:
    """A target without its query and fragment."""
    return target.split("#", 1)[0].split("?", 1)[0]


_IMG = re.compile(r'<img src="([^"]*)"([^>]*?)\s*/?>')
_ALT = re.compile(r'\balt="([^"]*)"')
_HREF = re.compile(r'<a href="(/[^"/][^"]*|/)"')


def finish_body(
    html: str, images: Mapping[tuple[str, str], Any], resolve: Callable[[str], str]
) -> str:
    """A rendered body with its local images served from their published, content-hashed
    files (with their size), and its links to moved pages leading to their address now.

    `images` maps (path relative to content/, alt text) to the asset published for it.
    """
    if images and "<img" in html:

        def image(match: re.Match[str]) -> str:
            src, rest = match.group(1), match.group(2)
            alt = _ALT.search(rest)
            asset = images.get((content_path(unescape(src)), unescape(alt.group(1)) if alt else ""))
            if asset is None or not is_relative(unescape(src)):
                return match.group(0)
            size = (
                f' width="{asset.width}" height="{asset.height}"'
                if asset.width and asset.height
                else ""
            )
            shown = escape(unescape(alt.group(1))) if alt else ""
            return f'<img src="{asset.url}" alt="{shown}"{size} loading="lazy" decoding="async">'

        html = _IMG.sub(image, html)
    return _HREF.sub(lambda m: f'<a href="{escape(resolve(unescape(m.group(1))))}"', html)
