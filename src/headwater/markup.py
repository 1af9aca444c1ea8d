"""Turn untrusted Markdown into safe HTML, with heading anchors and a table of contents."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

WORDS_PER_MINUTE = 200
TOC_LEVELS = (2, 3)
URL_SCHEMES = {"http", "https", "mailto", "tel", "sms"}
# Ids the page layout itself uses; a heading must not take one.
RESERVED_IDS = frozenset({"main", "top", "content", "contents", "skip", "crisis", "footer-help"})

# What survives sanitising: HTML5 text-level and block content, no obsolete attributes
# (the W3C checker rejects align, charoff, …), no landmarks that would confuse the page outline.
_TAGS = (
    "a abbr b bdi bdo blockquote br caption cite code col colgroup data dd del details dfn div "
    "dl dt em figcaption figure h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q rp rt ruby s "
    "samp small span strong sub summary sup table tbody td tfoot th thead time tr u ul var wbr"
)
ALLOWED_TAGS = frozenset(_TAGS.split())
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "ol": {"start", "reversed"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "time": {"datetime"},
    "data": {"value"},
    "del": {"datetime", "cite"},
    "ins": {"datetime", "cite"},
    **{f"h{n}": {"id"} for n in range(2, 7)},
}
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ANCHOR = re.compile(r"<a\s([^>]*)>")
_HREF = re.compile(r'href="([^"]*)"')


@dataclass(frozen=True)
class Heading:
    """One entry of a table of contents."""

    level: int
    id: str
    text: str


@dataclass(frozen=True)
class Body:
    """A rendered long text: safe HTML, its headings and its length."""

    html: str
    toc: tuple[Heading, ...]
    words: int

    @property
    def reading_minutes(self) -> int:
        return max(1, round(self.words / WORDS_PER_MINUTE))


class MarkdownRenderer:
    """Renders CommonMark (+ tables) to sanitised HTML; caches by text, since bodies repeat."""

    def __init__(self, site_host: str) -> None:
        self.site_host = site_host
        self._md = MarkdownIt("commonmark", {"html": True}).enable("table")
        self._cache: dict[tuple[str, bool], Body] = {}

    def render(self, text: str) -> Body:
        """Render a whole document: headings get ids, h1 becomes h2 (the page owns the h1)."""
        return self._render(text, inline=False)

    def render_inline(self, text: str) -> str:
        """Render one line of inline Markdown, without a wrapping paragraph."""
        return self._render(text, inline=True).html

    def _render(self, text: str, *, inline: bool) -> Body:
        key = (text, inline)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._render_uncached(text, inline)
        return cached

    def _render_uncached(self, text: str, inline: bool) -> Body:
        env: dict[str, Any] = {}
        if inline:
            tokens = self._md.parseInline(text, env)
            toc: list[Heading] = []
        else:
            tokens = self._md.parse(text, env)
            toc = _anchor_headings(tokens)
        words = count_words(text)
        raw = self._md.renderer.render(tokens, self._md.options, env)
        return Body(html=self.sanitise(raw), toc=tuple(toc), words=words)

    def sanitise(self, html: str) -> str:
        """Keep safe HTML only, then mark links to other sites rel="noopener"."""
        clean = nh3.clean(
            html,
            tags=set(ALLOWED_TAGS),
            attributes=ALLOWED_ATTRIBUTES,
            attribute_filter=_filter_attribute,
            link_rel=None,
            url_schemes=URL_SCHEMES,
        )
        return _ANCHOR.sub(self._mark_external, clean).strip()

    def _mark_external(self, match: re.Match[str]) -> str:
        attrs = match.group(1)
        href = _HREF.search(attrs)
        if href and _is_external(href.group(1), self.site_host):
            return f'<a {attrs} rel="noopener">'
        return match.group(0)


_NOT_PROSE = re.compile(r"\]\([^)]*\)|<[^>\n]*>|https?://\S+")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def count_words(markdown: str) -> int:
    """Words a reader reads: link targets, tags and bare URLs left out.

    Counted on the source, so listings can show reading times without rendering bodies.
    """
    return len(_WORD.findall(_NOT_PROSE.sub(" ", markdown)))


def _is_external(href: str, site_host: str) -> bool:
    parts = urlsplit(href.replace("&amp;", "&"))
    return parts.scheme in ("http", "https") and parts.hostname != site_host


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "id" and (value in RESERVED_IDS or not _ID.match(value)):
        return None
    return value


def _text_tokens(tokens: list[Token]) -> list[Token]:
    found: list[Token] = []
    for token in tokens:
        if token.type in ("text", "code_inline", "code_block", "fence"):
            found.append(token)
        if token.children:
            found += _text_tokens(token.children)
    return found


def _anchor_headings(tokens: list[Token]) -> list[Heading]:
    """Give every heading a unique id from its text; collect h2/h3 for the contents list."""
    toc: list[Heading] = []
    used = set(RESERVED_IDS)
    for index, token in enumerate(tokens):
        if token.type not in ("heading_open", "heading_close"):
            continue
        if token.tag == "h1":
            token.tag = "h2"
        if token.type == "heading_close":
            continue
        inline = tokens[index + 1]
        text = "".join(t.content for t in _text_tokens(inline.children or []))
        anchor = _unique(slugify(text) or "section", used)
        token.attrSet("id", anchor)
        level = int(token.tag[1])
        if level in TOC_LEVELS:
            toc.append(Heading(level=level, id=anchor, text=text))
    return toc


def _unique(base: str, used: set[str]) -> str:
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by hyphens: 'What Causes PTSD?' -> 'what-causes-ptsd'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
