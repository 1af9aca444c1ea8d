"""Render Contentful RichText documents to the HTML the Markdown path makes of the same text.

The output copies cmark-gfm's HTML byte for byte where the two formats overlap (bare `<h1>`…
`<h6>`, `<hr />`, tables with a `<thead>`, one newline after each block), so that
`markup._anchor_headings` and `MarkdownRenderer.sanitise` treat both sources alike. Where
RichText says something Markdown cannot, the nearest Markdown shape wins:

- Lists: Contentful wraps every list item's text in a paragraph; cmark does so only in *loose*
  lists (items separated by blank lines). A list is rendered tight — its paragraphs unwrapped,
  `<li>text</li>` — unless one of its items holds more than one paragraph, which in Markdown
  needs a blank line and so makes the whole list loose.
- Table cells hold paragraphs; a cell's single paragraph is unwrapped as in a GFM table. The
  leading rows made only of header cells form the `<thead>`.
- Empty paragraphs (the editor leaves one at the end of most documents) are dropped, as
  Markdown has none.
- A line break inside a text value (shift-enter in the editor) is a hard break, `<br />`.
- Marks nest in the order Contentful lists them, the first innermost, as Contentful's own
  rich-text-html-renderer does. Strikethrough is `<s>`.

Node types follow `@contentful/rich-text-types` (BLOCKS, INLINES, MARKS). An unknown node
type keeps its text content (and the known nodes inside it) and logs one warning per type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

HEADINGS = {f"heading-{n}": n for n in range(1, 7)}
PARAGRAPH = "paragraph"
UL_LIST = "unordered-list"
OL_LIST = "ordered-list"
LIST_ITEM = "list-item"
HR = "hr"
QUOTE = "blockquote"
TABLE = "table"
TABLE_ROW = "table-row"
TABLE_CELL = "table-cell"
TABLE_HEADER_CELL = "table-header-cell"
EMBEDDED_ENTRY = "embedded-entry-block"
EMBEDDED_ASSET = "embedded-asset-block"
EMBEDDED_RESOURCE = "embedded-resource-block"
EMBEDDED_BLOCKS = frozenset({EMBEDDED_ENTRY, EMBEDDED_ASSET, EMBEDDED_RESOURCE})

HYPERLINK = "hyperlink"
ENTRY_HYPERLINK = "entry-hyperlink"
ASSET_HYPERLINK = "asset-hyperlink"
RESOURCE_HYPERLINK = "resource-hyperlink"
EMBEDDED_ENTRY_INLINE = "embedded-entry-inline"
EMBEDDED_RESOURCE_INLINE = "embedded-resource-inline"
EMBEDDED_INLINES = frozenset({EMBEDDED_ENTRY_INLINE, EMBEDDED_RESOURCE_INLINE})
TEXT = "text"

MARK_TAGS = {"bold": "strong", "italic": "em", "underline": "u", "code": "code"} | {
    "superscript": "sup",
    "subscript": "sub",
    "strikethrough": "s",
}
LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

LinkResolver = Callable[[Mapping[str, Any]], str | None]
"""Takes a node's `data.target` link and returns the URL it points to, or None for no link."""
Embedder = Callable[[str, Mapping[str, Any]], str]
"""Takes the embedding node's type and its `data.target`; returns already-safe HTML."""


def render_richtext(
    document: Mapping[str, Any],
    *,
    link_entry: LinkResolver,
    link_asset: LinkResolver,
    embed: Embedder,
) -> str:
    """A RichText document as HTML; never raises on unknown or malformed nodes.

    `link_entry` resolves entry-hyperlink and resource-hyperlink targets (a resource link's
    target is `{"sys": {"type": "ResourceLink", "urn": …}}`), `link_asset` asset-hyperlink
    targets. `embed` is called with the node type (`embedded-entry-block`,
    `embedded-asset-block`, `embedded-resource-block`, `embedded-entry-inline`,
    `embedded-resource-inline`) and the target. Every URL whose scheme is not http, https,
    mailto or tel is dropped, keeping the link's text.
    """
    writer = _Writer(link_entry, link_asset, embed)
    writer.blocks(_children(document))
    return "".join(writer.out)


def richtext_words(document: Mapping[str, Any]) -> int:
    """The words of every text value, counted by the rule the Markdown bodies use."""
    # Imported here: markup may import this module to render RichText bodies.
    from headwater import markup

    parts: list[str] = []
    _collect_text(document, parts)
    return markup.count_words("".join(parts))


_REFERENCING = {
    EMBEDDED_ENTRY: "Entry",
    EMBEDDED_ENTRY_INLINE: "Entry",
    ENTRY_HYPERLINK: "Entry",
    EMBEDDED_ASSET: "Asset",
    ASSET_HYPERLINK: "Asset",
}


def references(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every entry and asset a document embeds or links to: (link type, id, node type), in
    document order, each (link type, id) once."""
    found: dict[tuple[str, str], str] = {}
    stack = [document]
    while stack:
        node = stack.pop()
        kind = node.get("nodeType")
        link_type = _REFERENCING.get(kind) if isinstance(kind, str) else None
        if link_type is not None:
            target = _target(node)
            sys = target.get("sys") if target is not None else None
            ident = sys.get("id") if isinstance(sys, dict) else None
            if isinstance(ident, str) and ident:
                found.setdefault((link_type, ident), str(kind))
        stack.extend(reversed(_children(node)))
    return [(link_type, ident, kind) for (link_type, ident), kind in found.items()]


def is_safe_url(url: str) -> bool:
    """True for relative URLs and http, https, mailto and tel ones."""
    # Browsers drop tabs and newlines anywhere in a URL, and controls and spaces around it.
    cleaned = re.sub(r"[\t\n\r]", "", url).strip(_C0_AND_SPACE)
    match = _SCHEME.match(cleaned)
    return match is None or match.group(1).lower() in LINK_SCHEMES


_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
# cmark-gfm's href escaping (houdini): these stay as they are, the rest is percent-encoded.
_HREF_SAFE = "-_.+!*'(),%#@?=;:/&$~"


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _escape_href(url: str) -> str:
    return quote(url, safe=_HREF_SAFE).replace("&", "&amp;").replace("'", "&#x27;")


def _children(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = node.get("content")
    if not isinstance(content, list):
        return []
    return [child for child in content if isinstance(child, dict)]


def _target(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    data = node.get("data")
    target = data.get("target") if isinstance(data, dict) else None
    return target if isinstance(target, dict) else None


def _collect_text(node: Mapping[str, Any], parts: list[str]) -> None:
    if node.get("nodeType") == TEXT:
        value = node.get("value")
        parts.append(value if isinstance(value, str) else "")
        return
    for child in _children(node):
        _collect_text(child, parts)
    if node.get("nodeType") not in _INLINE_TYPES:
        parts.append("\n")


_INLINE_TYPES = frozenset(
    {TEXT, HYPERLINK, ENTRY_HYPERLINK, ASSET_HYPERLINK, RESOURCE_HYPERLINK} | EMBEDDED_INLINES
)
_BLOCK_TYPES = frozenset(
    {PARAGRAPH, UL_LIST, OL_LIST, LIST_ITEM, HR, QUOTE, TABLE, TABLE_ROW}
    | {TABLE_CELL, TABLE_HEADER_CELL, "document"}
    | set(HEADINGS)
    | EMBEDDED_BLOCKS
)


class _Writer:
    """One document's HTML as it is written, and the unknown types already warned about."""

    def __init__(self, link_entry: LinkResolver, link_asset: LinkResolver, embed: Embedder) -> None:
        self.link_entry = link_entry
        self.link_asset = link_asset
        self.embed = embed
        self.out: list[str] = []
        self.warned: set[str] = set()

    def cr(self) -> None:
        """Start a new line unless at one: cmark's rule between blocks."""
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def unknown(self, node: Mapping[str, Any]) -> None:
        kind = str(node.get("nodeType"))
        if kind not in self.warned:
            self.warned.add(kind)
            log.warning("rich text: unknown node type %r; keeping its text only", kind)

    # Blocks

    def blocks(self, nodes: Iterable[Mapping[str, Any]], *, tight: bool = False) -> None:
        """Render block nodes; stray inline nodes between them are gathered into paragraphs."""
        run: list[Mapping[str, Any]] = []
        for node in nodes:
            kind = node.get("nodeType")
            if kind in _INLINE_TYPES:
                run.append(node)
                continue
            if run:
                self.paragraph(run, tight=tight)
                run = []
            self.block(node, tight=tight)
        if run:
            self.paragraph(run, tight=tight)

    def block(self, node: Mapping[str, Any], *, tight: bool) -> None:
        kind = node.get("nodeType")
        if kind == PARAGRAPH:
            self.paragraph(_children(node), tight=tight)
        elif isinstance(kind, str) and kind in HEADINGS:
            level = HEADINGS[kind]
            self.cr()
            self.out += [f"<h{level}>", self.inline_html(_children(node)), f"</h{level}>\n"]
        elif kind in (UL_LIST, OL_LIST):
            self.list(node)
        elif kind == QUOTE:
            self.cr()
            self.out.append("<blockquote>\n")
            self.blocks(_children(node))
            self.cr()
            self.out.append("</blockquote>\n")
        elif kind == HR:
            self.cr()
            self.out.append("<hr />\n")
        elif kind == TABLE:
            self.table(node)
        elif kind in EMBEDDED_BLOCKS:
            target = _target(node)
            if target is not None:
                self.cr()
                self.out.append(self.embed(str(kind), target))
                self.cr()
        elif kind in (LIST_ITEM, TABLE_ROW, TABLE_CELL, TABLE_HEADER_CELL, "document"):
            # Out of place (a list item outside a list): keep what it holds.
            self.blocks(_children(node), tight=tight)
        else:
            self.unknown(node)
            self.blocks(_children(node), tight=tight)

    def paragraph(self, inlines: Sequence[Mapping[str, Any]], *, tight: bool) -> None:
        html = self.inline_html(inlines)
        if not html.strip():
            return
        if tight:
            self.out.append(html)
        else:
            self.cr()
            self.out += ["<p>", html, "</p>\n"]

    def list(self, node: Mapping[str, Any]) -> None:
        tag = "ol" if node.get("nodeType") == OL_LIST else "ul"
        items = _children(node)
        tight = all(_paragraph_count(item) <= 1 for item in items)
        self.cr()
        self.out.append(f"<{tag}>\n")
        for item in items:
            self.cr()
            self.out.append("<li>")
            if item.get("nodeType") == LIST_ITEM:
                self.blocks(_children(item), tight=tight)
            else:
                self.blocks([item], tight=tight)
            self.out.append("</li>\n")
        self.out.append(f"</{tag}>\n")

    def table(self, node: Mapping[str, Any]) -> None:
        rows = [row for row in _children(node) if row.get("nodeType") == TABLE_ROW]
        head = 0
        while head < len(rows) and all(
            cell.get("nodeType") == TABLE_HEADER_CELL for cell in _children(rows[head])
        ):
            head += 1
        self.cr()
        self.out.append("<table>\n")
        if head:
            self.out.append("<thead>\n")
            for row in rows[:head]:
                self.row(row)
            self.out.append("</thead>\n")
        if rows[head:]:
            self.out.append("<tbody>\n")
            for row in rows[head:]:
                self.row(row)
            self.out.append("</tbody>\n")
        self.out.append("</table>\n")

    def row(self, row: Mapping[str, Any]) -> None:
        self.out.append("<tr>\n")
        for cell in _children(row):
            tag = "th" if cell.get("nodeType") == TABLE_HEADER_CELL else "td"
            attrs = ""
            data = cell.get("data")
            if isinstance(data, dict):
                for name in ("colspan", "rowspan"):
                    value = data.get(name)
                    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
                        attrs += f' {name}="{value}"'
            self.out.append(f"<{tag}{attrs}>")
            content = _children(cell)
            if _paragraph_count(cell) <= 1:
                self.blocks(content, tight=True)
            else:
                self.blocks(content)
                self.cr()
            self.out.append(f"</{tag}>\n")
        self.out.append("</tr>\n")

    # Inlines

    def inline_html(self, nodes: Iterable[Mapping[str, Any]]) -> str:
        return "".join(self.inline(node) for node in nodes)

    def inline(self, node: Mapping[str, Any]) -> str:
        kind = node.get("nodeType")
        if kind == TEXT:
            return self.text(node)
        if kind == HYPERLINK:
            data = node.get("data")
            uri = data.get("uri") if isinstance(data, dict) else None
            return self.link(uri if isinstance(uri, str) else None, node)
        if kind in (ENTRY_HYPERLINK, RESOURCE_HYPERLINK, ASSET_HYPERLINK):
            target = _target(node)
            resolve = self.link_asset if kind == ASSET_HYPERLINK else self.link_entry
            return self.link(resolve(target) if target is not None else None, node)
        if kind in EMBEDDED_INLINES:
            target = _target(node)
            return self.embed(str(kind), target) if target is not None else ""
        if kind not in _BLOCK_TYPES:
            self.unknown(node)
        # A block inside a paragraph, or an unknown inline: keep what it holds.
        return self.inline_html(_children(node))

    def link(self, url: str | None, node: Mapping[str, Any]) -> str:
        inner = self.inline_html(_children(node))
        if not url or not is_safe_url(url):
            return inner
        return f'<a href="{_escape_href(url.strip())}">{inner}</a>'

    def text(self, node: Mapping[str, Any]) -> str:
        value = node.get("value")
        html = _escape_text(value) if isinstance(value, str) else ""
        html = html.replace("\n", "<br />\n")
        marks = node.get("marks")
        for mark in marks if isinstance(marks, list) else []:
            kind = mark.get("type") if isinstance(mark, dict) else None
            tag = MARK_TAGS.get(kind) if isinstance(kind, str) else None
            if tag is None:
                if f"mark:{kind}" not in self.warned:
                    self.warned.add(f"mark:{kind}")
                    log.warning("rich text: unknown mark %r; keeping the text unmarked", kind)
                continue
            html = f"<{tag}>{html}</{tag}>"
        return html


def _paragraph_count(node: Mapping[str, Any]) -> int:
    return sum(
        1 for child in _children(node) if child.get("nodeType") == PARAGRAPH and _has_content(child)
    )


def _has_content(node: Mapping[str, Any]) -> bool:
    parts: list[str] = []
    _collect_text(node, parts)
    return bool("".join(parts).strip()) or any(
        child.get("nodeType") in EMBEDDED_INLINES for child in _children(node)
    )
