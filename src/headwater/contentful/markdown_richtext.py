"""Markdown to Contentful RichText, for seeding a space from content/ (the other direction of
richtext.py): what cmark-gfm makes of the Markdown, as RichText nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from html.parser import HTMLParser
from typing import Any

from headwater.contentful.richtext import (
    ENTRY_HYPERLINK,
    HR,
    HYPERLINK,
    LIST_ITEM,
    MARK_TAGS,
    OL_LIST,
    PARAGRAPH,
    QUOTE,
    TABLE,
    TABLE_CELL,
    TABLE_HEADER_CELL,
    TABLE_ROW,
    TEXT,
    UL_LIST,
)

LinkTarget = Callable[[str], Mapping[str, Any] | None]
"""Takes a Markdown link's URL; returns an entry Link for an entry-hyperlink, or None."""


def markdown_to_richtext(markdown: str, *, link_target: LinkTarget | None = None) -> dict[str, Any]:
    """A RichText document holding what cmark-gfm makes of the Markdown.

    Covers what Markdown can say: paragraphs, headings, lists, quotes, rules, tables, links,
    bold, italic, code, strikethrough, line breaks (raw HTML's sup, sub and u too). A link
    whose URL `link_target` maps to an entry Link becomes an entry-hyperlink; the rest are
    hyperlinks. Code blocks become paragraphs in code; images become their alt text.
    """
    from cmarkgfm import cmark

    html = cmark.markdown_to_html_with_extensions(
        markdown, options=cmark.Options.CMARK_OPT_UNSAFE, extensions=["table"]
    )
    tree = _TreeBuilder()
    tree.feed(html)
    tree.close()
    content = _Converter(link_target).blocks(tree.root.children)
    if not content:
        content = [_node(PARAGRAPH, [_text("", [])])]
    return _node("document", content)


class _Element:
    """One HTML element of cmark's output: its tag, attributes and children."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[_Element | str] = []


_VOID = frozenset({"br", "hr", "img", "input", "wbr"})


class _TreeBuilder(HTMLParser):
    """Parses cmark's (well-formed) HTML into a tree of _Element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


# Raw HTML in Markdown may use any of these; cmark itself writes strong, em and code.
_INLINE_MARKS = {tag: mark for mark, tag in MARK_TAGS.items()} | {
    "b": "bold",
    "i": "italic",
    "del": "strikethrough",
    "strike": "strikethrough",
    "ins": "underline",
}
_BLOCK_TAGS = frozenset(
    {"p", "ul", "ol", "li", "blockquote", "hr", "table", "pre", "div"}
    | {f"h{n}" for n in range(1, 7)}
)


def _node(
    kind: str, content: list[dict[str, Any]], data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"nodeType": kind, "data": data or {}, "content": content}


def _text(value: str, marks: Sequence[str]) -> dict[str, Any]:
    return {"nodeType": TEXT, "value": value, "marks": [{"type": m} for m in marks], "data": {}}


class _Converter:
    """Turns the element tree into RichText nodes."""

    def __init__(self, link_target: LinkTarget | None) -> None:
        self.link_target = link_target

    def blocks(self, children: Sequence[_Element | str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        run: list[_Element | str] = []

        def flush() -> None:
            inlines = self.inlines(run, ())
            if any(n["nodeType"] != TEXT or n["value"].strip() for n in inlines):
                out.append(_node(PARAGRAPH, _strip(inlines)))
            run.clear()

        for child in children:
            if isinstance(child, _Element) and child.tag in _BLOCK_TAGS:
                flush()
                out.extend(self.block(child))
            else:
                run.append(child)
        flush()
        return out

    def block(self, element: _Element) -> list[dict[str, Any]]:
        tag = element.tag
        if tag == "p":
            return [_node(PARAGRAPH, _strip(self.inlines(element.children, ())))]
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            return [_node(f"heading-{tag[1]}", _strip(self.inlines(element.children, ())))]
        if tag in ("ul", "ol"):
            items = [
                _node(LIST_ITEM, self.blocks(li.children) or [_node(PARAGRAPH, [_text("", [])])])
                for li in element.children
                if isinstance(li, _Element) and li.tag == "li"
            ]
            return [_node(OL_LIST if tag == "ol" else UL_LIST, items)]
        if tag == "blockquote":
            # Contentful's quote holds paragraphs only.
            paragraphs = [
                block if block["nodeType"] == PARAGRAPH else _node(PARAGRAPH, _flatten(block))
                for block in self.blocks(element.children)
            ]
            return [_node(QUOTE, paragraphs)]
        if tag == "hr":
            return [_node(HR, [])]
        if tag == "table":
            return [
                _node(
                    TABLE,
                    [
                        self.row(tr)
                        for tr in _descendants(element)
                        if isinstance(tr, _Element) and tr.tag == "tr"
                    ],
                )
            ]
        if tag == "pre":
            code = "".join(t for t in _descendants(element) if isinstance(t, str)).rstrip("\n")
            return [_node(PARAGRAPH, [_text(code, ["code"])])]
        return self.blocks(element.children)

    def row(self, tr: _Element) -> dict[str, Any]:
        cells = [
            _node(
                TABLE_HEADER_CELL if cell.tag == "th" else TABLE_CELL,
                [_node(PARAGRAPH, _strip(self.inlines(cell.children, ())))],
            )
            for cell in tr.children
            if isinstance(cell, _Element) and cell.tag in ("th", "td")
        ]
        return _node(TABLE_ROW, cells)

    def inlines(
        self, children: Sequence[_Element | str], marks: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after_break = False
        for child in children:
            if isinstance(child, str):
                # cmark ends a hard break's line after the <br />; a soft break is a space.
                text = child[1:] if after_break and child.startswith("\n") else child
                _append(out, _text(text.replace("\n", " "), marks))
            elif child.tag == "br":
                _append(out, _text("\n", marks))
            elif child.tag == "a":
                out.append(self.link(child, marks))
            elif child.tag == "img":
                _append(out, _text(child.attrs.get("alt", ""), marks))
            elif child.tag in _INLINE_MARKS:
                mark = _INLINE_MARKS[child.tag]
                inner = marks if mark in marks else (*marks, mark)
                for node in self.inlines(child.children, inner):
                    _append(out, node)
            else:
                for node in self.inlines(child.children, marks):
                    _append(out, node)
            after_break = isinstance(child, _Element) and child.tag == "br"
        return out

    def link(self, element: _Element, marks: tuple[str, ...]) -> dict[str, Any]:
        # Contentful's hyperlinks hold text only: nested links become their text.
        content: list[dict[str, Any]] = []
        for node in self.inlines(element.children, marks):
            for text in _flatten(node) if node["nodeType"] != TEXT else [node]:
                _append(content, text)
        url = element.attrs.get("href", "")
        target = self.link_target(url) if self.link_target else None
        if target is not None:
            return _node(ENTRY_HYPERLINK, content, {"target": dict(target)})
        return _node(HYPERLINK, content, {"uri": url})


def _append(out: list[dict[str, Any]], node: dict[str, Any]) -> None:
    """Add a node, merging a text into the text before it when their marks are the same."""
    if node["nodeType"] == TEXT and not node["value"]:
        return
    last = out[-1] if out else None
    if last and node["nodeType"] == TEXT == last["nodeType"] and last["marks"] == node["marks"]:
        last["value"] += node["value"]
        return
    out.append(node)


def _strip(inlines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trim the whitespace cmark leaves around a block's text; never return no content."""
    if inlines and inlines[0]["nodeType"] == TEXT:
        inlines[0]["value"] = inlines[0]["value"].lstrip(" ")
    if inlines and inlines[-1]["nodeType"] == TEXT:
        inlines[-1]["value"] = inlines[-1]["value"].rstrip(" ")
    inlines = [n for n in inlines if n["nodeType"] != TEXT or n["value"]]
    return inlines or [_text("", [])]


def _flatten(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The text nodes inside a node, in order."""
    if node["nodeType"] == TEXT:
        return [node]
    out: list[dict[str, Any]] = []
    for child in node["content"]:
        out.extend(_flatten(child))
    return out


def _descendants(element: _Element) -> Iterator[_Element | str]:
    for child in element.children:
        yield child
        if isinstance(child, _Element):
            yield from _descendants(child)
