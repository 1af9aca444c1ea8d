"""Contentful RichText renders to the HTML structure of the Markdown path, safely."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import frontmatter
import pytest

from headwater.contentful.markdown_richtext import markdown_to_richtext
from headwater.contentful.richtext import render_richtext, richtext_words
from headwater.markup import MarkdownRenderer, _anchor_headings

FIXTURES = Path(__file__).parent / "fixtures" / "contentful"
CONTENT = Path(__file__).resolve().parent.parent / "content"
md = MarkdownRenderer(site_host="clinic.example")

# Every type @contentful/rich-text-types defines (BLOCKS, INLINES, MARKS).
BLOCKS = {"document", "paragraph", "ordered-list", "unordered-list", "list-item", "hr"} | {
    "blockquote",
    "embedded-entry-block",
    "embedded-asset-block",
    "embedded-resource-block",
    "table",
    "table-row",
    "table-cell",
    "table-header-cell",
    *(f"heading-{n}" for n in range(1, 7)),
}
INLINES = {"hyperlink", "entry-hyperlink", "asset-hyperlink", "resource-hyperlink"} | {
    "embedded-entry-inline",
    "embedded-resource-inline",
}
MARKS = {"bold", "italic", "underline", "code", "superscript", "subscript", "strikethrough"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def link_entry(target: Mapping[str, Any]) -> str | None:
    return {"contactPage": "/contact/"}.get(target["sys"].get("id", ""))


def link_asset(target: Mapping[str, Any]) -> str | None:
    return f"https://assets.ctfassets.net/space/{target['sys']['id']}/leaflet.pdf"


def embed(kind: str, target: Mapping[str, Any]) -> str:
    ident = target["sys"].get("id") or target["sys"].get("urn")
    tag = "span" if kind.endswith("-inline") else "div"
    return f'<{tag} class="{kind}" data-id="{ident}"></{tag}>'


def render(document: Mapping[str, Any]) -> str:
    return render_richtext(document, link_entry=link_entry, link_asset=link_asset, embed=embed)


def as_published(html: str) -> str:
    """What markup makes of a body's HTML: heading ids (h1 demoted), then sanitised."""
    return md.sanitise(_anchor_headings(html, []))


def node_types(node: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    types, marks = {str(node["nodeType"])}, {m["type"] for m in node.get("marks", [])}
    for child in node.get("content", []):
        more_types, more_marks = node_types(child)
        types |= more_types
        marks |= more_marks
    return types, marks


def test_the_fixture_holds_every_node_type_and_mark_contentful_defines() -> None:
    types, marks = node_types(load("richtext-all-nodes.json"))
    assert types == BLOCKS | INLINES | {"text"}
    assert marks == MARKS


def test_every_node_type_and_mark_renders_as_cmark_would() -> None:
    html = render(load("richtext-all-nodes.json"))
    expected = """\
<h1>Heading one</h1>
<h2>Heading two</h2>
<h3>Heading three</h3>
<h4>Heading four</h4>
<h5>Heading five</h5>
<h6>Heading six</h6>
<p>Plain, <strong>bold</strong>, <em>italic</em>, <u>underlined</u>, <code>code</code>, \
x<sup>2</sup>, H<sub>2</sub>O, <s>struck</s> and <em><strong>both</strong></em>.</p>
<p>Visit <a href="https://example.org/?a=1&amp;b=2">a site</a>, \
<a href="/contact/">contact us</a>, read \
<a href="https://assets.ctfassets.net/space/leaflet/leaflet.pdf">the leaflet</a> \
or the shared FAQ. \
Inline: <span class="embedded-entry-inline" data-id="drChen"></span> and \
<span class="embedded-resource-inline" \
data-id="crn:contentful:::content:spaces/other-space/entries/shared-faq"></span>.</p>
<ul>
<li>First</li>
<li>Second
<ol>
<li>Nested one</li>
<li>Nested two</li>
</ol>
</li>
</ul>
<ol>
<li>Step one</li>
<li>Step two</li>
</ol>
<blockquote>
<p>A quoted line.</p>
<p>And another.</p>
</blockquote>
<hr />
<table>
<thead>
<tr>
<th>Service</th>
<th>Length</th>
</tr>
</thead>
<tbody>
<tr>
<td>First visit</td>
<td><strong>60 minutes</strong></td>
</tr>
<tr>
<td>Follow-up</td>
<td>30 minutes</td>
</tr>
</tbody>
</table>
<div class="embedded-entry-block" data-id="drChen"></div>
<div class="embedded-asset-block" data-id="leaflet"></div>
<div class="embedded-resource-block" \
data-id="crn:contentful:::content:spaces/other-space/entries/shared-faq"></div>
"""
    assert html == expected


ARTICLE_TWIN = """\
*This is sample content. Replace it with the clinic’s own description of a first visit \
before publishing it.*

Coming to a clinic for the first time can raise a lot of questions. This page describes, \
step by step, how a first appointment at Three Rivers Wellness is organized.

## Before your visit

You can book an appointment online or by phone; see [Contact us](/contact/) for the details. \
We will confirm the date, the time and the address, and tell you about any forms to fill in \
beforehand.

## When you arrive

Please arrive a few minutes early, so there is time to check in. It helps to bring:

- a photo ID;
- a list of any medicines you take;
- any questions you want to ask.

## Meeting your clinician

Your first appointment is a conversation with one of our clinicians. They will ask about your \
health history and what brings you to the clinic, and answer your questions. Together you will \
talk about your options and what the next steps could be. There is no obligation to decide \
anything at this appointment.

### Questions you might want to ask

- What would each step involve?
- How long does an appointment take?
- Who can I contact between appointments?

## After your visit

If you decide to go ahead, we will arrange your next appointment with you. If you think of \
more questions later, [contact us](/contact/).
"""


def test_rich_text_article_and_its_markdown_twin_publish_the_same_html() -> None:
    document = load("richtext-article.json")
    published = as_published(render(document))
    assert published == md.render(ARTICLE_TWIN).html
    assert '<h2 id="before-your-visit">Before your visit</h2>' in published
    assert '<a href="/contact/">contact us</a>' in published


def test_rich_text_article_and_its_twin_have_the_same_words() -> None:
    document = load("richtext-article.json")
    words = richtext_words(document)
    # Counted on the source, Markdown also counts list and heading markers, and a full stop
    # after a link's "(url)" as a word of its own.
    markers = ARTICLE_TWIN.count("\n- ") + ARTICLE_TWIN.count("\n#") + 1
    assert words == md.words(ARTICLE_TWIN) - markers
    assert round(words / 200) == md.render(ARTICLE_TWIN).reading_minutes


@pytest.mark.parametrize(
    "path",
    sorted(CONTENT.glob("*/*.md")),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_sample_markdown_converted_to_rich_text_renders_byte_for_byte_alike(path: Path) -> None:
    markdown = frontmatter.load(str(path)).content.strip() + "\n"
    document = markdown_to_richtext(markdown)
    assert as_published(render(document)) == md.render(markdown).html


def test_markdown_conversion_covers_tables_quotes_rules_and_breaks() -> None:
    markdown = (
        "> **Note:** read\n> this\n\n---\n\n| A | B |\n|---|---|\n| 1 | `2` |\n\n"
        "line one  \nline two\n\n1. x\n2. y\n"
    )
    document = markdown_to_richtext(markdown)
    kinds = [node["nodeType"] for node in document["content"]]
    assert kinds == ["blockquote", "hr", "table", "paragraph", "ordered-list"]
    quote = document["content"][0]["content"][0]["content"]
    assert quote[0] == {
        "nodeType": "text",
        "value": "Note:",
        "marks": [{"type": "bold"}],
        "data": {},
    }
    assert quote[1]["value"] == " read this", "a soft break is a space"
    assert document["content"][3]["content"][0]["value"] == "line one\nline two"
    assert as_published(render(document)) == md.render(markdown).html.replace(
        "read\nthis", "read this"
    )


def test_internal_links_can_become_entry_hyperlinks() -> None:
    target = {"sys": {"type": "Link", "linkType": "Entry", "id": "contactPage"}}
    document = markdown_to_richtext(
        "[Write to us](/contact/) or [elsewhere](https://example.org/).",
        link_target=lambda url: target if url == "/contact/" else None,
    )
    links = [n for n in document["content"][0]["content"] if n["nodeType"] != "text"]
    assert [n["nodeType"] for n in links] == ["entry-hyperlink", "hyperlink"]
    assert links[0]["data"] == {"target": target}
    assert links[1]["data"] == {"uri": "https://example.org/"}


def test_unknown_node_type_keeps_its_text_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    document = {
        "nodeType": "document",
        "data": {},
        "content": [
            {
                "nodeType": "accordion",
                "data": {},
                "content": [
                    {"nodeType": "text", "value": "Opening hours", "marks": [], "data": {}},
                    {
                        "nodeType": "paragraph",
                        "data": {},
                        "content": [
                            {"nodeType": "text", "value": "Mon ", "marks": [], "data": {}},
                            {
                                "nodeType": "mention",
                                "data": {},
                                "content": [
                                    {"nodeType": "text", "value": "to Fri", "marks": [], "data": {}}
                                ],
                            },
                        ],
                    },
                ],
            },
            {"nodeType": "accordion", "data": {}, "content": []},
        ],
    }
    with caplog.at_level(logging.WARNING, logger="headwater.contentful.richtext"):
        html = render(document)
    assert html == "<p>Opening hours</p>\n<p>Mon to Fri</p>\n"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "'accordion'" in warnings[0] and "'mention'" in warnings[1]


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_hyperlinks_with_unsafe_schemes_are_dropped_keeping_the_text(uri: str) -> None:
    document = {
        "nodeType": "document",
        "data": {},
        "content": [
            {
                "nodeType": "paragraph",
                "data": {},
                "content": [
                    {
                        "nodeType": "hyperlink",
                        "data": {"uri": uri},
                        "content": [
                            {"nodeType": "text", "value": "click", "marks": [], "data": {}}
                        ],
                    }
                ],
            }
        ],
    }
    assert render(document) == "<p>click</p>\n"


def test_safe_schemes_and_relative_links_are_kept() -> None:
    uris = ["mailto:hello@example.org", "tel:988", "/blog/", "#top", "https://x.example/a b"]
    content = [
        {
            "nodeType": "hyperlink",
            "data": {"uri": uri},
            "content": [{"nodeType": "text", "value": "x", "marks": [], "data": {}}],
        }
        for uri in uris
    ]
    html = render(
        {"nodeType": "document", "content": [{"nodeType": "paragraph", "content": content}]}
    )
    hrefs = [part.split('"')[0] for part in html.split('href="')[1:]]
    assert hrefs == [
        "mailto:hello@example.org",
        "tel:988",
        "/blog/",
        "#top",
        "https://x.example/a%20b",
    ]


def test_a_resolver_returning_an_unsafe_url_gives_text_only() -> None:
    document = {
        "nodeType": "document",
        "content": [
            {
                "nodeType": "paragraph",
                "content": [
                    {
                        "nodeType": "entry-hyperlink",
                        "data": {"target": {"sys": {"type": "Link", "id": "x"}}},
                        "content": [{"nodeType": "text", "value": "entry", "marks": []}],
                    }
                ],
            }
        ],
    }
    html = render_richtext(
        document,
        link_entry=lambda target: "javascript:alert(1)",
        link_asset=link_asset,
        embed=embed,
    )
    assert html == "<p>entry</p>\n"


def test_missing_or_unpublished_link_targets_render_their_text() -> None:
    document = load("richtext-all-nodes.json")
    html = render_richtext(
        document, link_entry=lambda t: None, link_asset=lambda t: None, embed=embed
    )
    assert "Visit <a href" in html and ", contact us, read the leaflet or" in html


def test_text_values_are_escaped() -> None:
    value = '<script>alert("x")</script> & <b>bold</b>'
    document = {
        "nodeType": "document",
        "content": [
            {
                "nodeType": "heading-2",
                "content": [{"nodeType": "text", "value": value, "marks": [{"type": "code"}]}],
            }
        ],
    }
    html = render(document)
    assert html == (
        "<h2><code>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
        "&lt;b&gt;bold&lt;/b&gt;</code></h2>\n"
    )
    assert "<script" not in as_published(html)


def test_a_list_item_with_two_paragraphs_makes_the_list_loose_as_in_markdown() -> None:
    def item(*texts: str) -> dict[str, Any]:
        return {
            "nodeType": "list-item",
            "content": [
                {"nodeType": "paragraph", "content": [{"nodeType": "text", "value": t}]}
                for t in texts
            ],
        }

    document = {
        "nodeType": "document",
        "content": [{"nodeType": "unordered-list", "content": [item("a", "more"), item("b")]}],
    }
    html = render(document)
    assert html.startswith("<ul>\n<li>\n<p>a</p>\n<p>more</p>\n</li>\n<li>\n<p>b</p>")
    assert as_published(html) == md.render("- a\n\n  more\n- b\n").html


def test_line_breaks_in_text_are_hard_breaks() -> None:
    document = markdown_to_richtext("one  \ntwo\n")
    assert render(document) == "<p>one<br />\ntwo</p>\n"
    assert as_published(render(document)) == md.render("one  \ntwo\n").html


def test_header_rows_form_the_thead_and_spans_are_kept() -> None:
    def cell(kind: str, text: str, **data: int) -> dict[str, Any]:
        paragraph = {"nodeType": "paragraph", "content": [{"nodeType": "text", "value": text}]}
        return {"nodeType": kind, "data": data, "content": [paragraph]}

    document = {
        "nodeType": "document",
        "content": [
            {
                "nodeType": "table",
                "content": [
                    {"nodeType": "table-row", "content": [cell("table-cell", "a", colspan=2)]},
                    {"nodeType": "table-row", "content": [cell("table-header-cell", "b")]},
                ],
            }
        ],
    }
    html = render(document)
    assert html == (
        '<table>\n<tbody>\n<tr>\n<td colspan="2">a</td>\n</tr>\n<tr>\n<th>b</th>\n</tr>\n'
        "</tbody>\n</table>\n"
    )


def test_malformed_documents_never_raise() -> None:
    for document in (
        {},
        {"nodeType": "document", "content": "nonsense"},
        {"nodeType": "document", "content": [None, 3, {"nodeType": "paragraph"}]},
        {"nodeType": "document", "content": [{"nodeType": "embedded-entry-block", "data": {}}]},
        {"nodeType": "document", "content": [{"nodeType": "text", "value": 5, "marks": "x"}]},
        {
            "nodeType": "document",
            "content": [{"nodeType": "paragraph", "content": [{"nodeType": "hyperlink"}]}],
        },
    ):
        assert render(document) == ""


def test_richtext_words_counts_text_values_like_markdown_bodies() -> None:
    document = markdown_to_richtext(
        "## Two words\n\nThree **more** words, see https://x.example/\n"
    )
    assert richtext_words(document) == 6, "the bare URL is not read"
    assert richtext_words({"nodeType": "document", "content": []}) == 0


def test_embedded_assets_keep_their_picture_markup_after_sanitising(tmp_path: Path) -> None:
    from support import make_project

    from headwater.assets import plan_static
    from headwater.build import check_content
    from headwater.config import make_options
    from headwater.model import Asset, Entry
    from headwater.render import make_environment

    project = make_project(tmp_path / "site")
    options = make_options(
        root=project,
        out="public",
        base_url="https://example.test",
        source="local",
        preview=False,
        full=False,
    )
    _, site, _ = check_content(options)
    url = "https://images.ctfassets.net/space1/asset1/abc/photo.jpg"
    site.assets = {
        **site.assets,
        "asset1": Asset(
            "asset1", "Photo", "A calm river", "image/jpeg", url, url=url, width=2000, height=1000
        ),
    }
    link = {"sys": {"type": "Link", "linkType": "Asset", "id": "asset1"}}
    article = next(e for e in site.entries.values() if e.content_type == "article")
    entry_link = {"sys": {"type": "Link", "linkType": "Entry", "id": article.id}}
    document = {
        "nodeType": "document",
        "data": {},
        "content": [
            {
                "nodeType": "paragraph",
                "data": {},
                "content": [
                    {
                        "nodeType": "text",
                        "value": "<script>alert(1)</script>",
                        "marks": [],
                        "data": {},
                    }
                ],
            },
            {"nodeType": "embedded-asset-block", "data": {"target": link}, "content": []},
            {"nodeType": "embedded-entry-block", "data": {"target": entry_link}, "content": []},
        ],
    }
    env = make_environment(project / "templates", site, plan_static(project / "static")[0])
    holder = Entry("page/x", "page", "x", "x:1", None)
    holder._complete({"body": document}, ())
    body = env.globals["body"]
    assert callable(body)
    html = str(body(holder).html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "<picture>" in html and f'srcset="{url}?w=480&amp;fm=avif 480w' in html
    assert 'alt="A calm river"' in html
    assert f'href="{article.url}"' in html
    assert "embed" not in html.replace("embedded", "")
