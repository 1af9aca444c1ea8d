"""Markdown becomes safe HTML with anchored headings, a contents list and a reading time."""

from __future__ import annotations

from headwater.markup import MarkdownRenderer, slugify

md = MarkdownRenderer(site_host="clinic.example")


def test_headings_get_unique_ids_and_h1_becomes_h2() -> None:
    body = md.render("# Intro\n\n## Causes\n\n### Genetics\n\n## Causes\n\n## Main\n")
    assert '<h2 id="intro">Intro</h2>' in body.html
    assert '<h2 id="causes-2">Causes</h2>' in body.html
    assert '<h2 id="main-2">Main</h2>' in body.html, "'main' belongs to the layout"
    assert [(h.level, h.id) for h in body.toc] == [
        (2, "intro"),
        (2, "causes"),
        (3, "genetics"),
        (2, "causes-2"),
        (2, "main-2"),
    ]


def test_tables_render_without_obsolete_attributes() -> None:
    html = md.render("| a | b |\n|--:|:-:|\n| 1 | 2 |\n").html
    assert "<table>" in html and "<td>1</td>" in html
    assert "style=" not in html and "align" not in html


def test_links_to_own_site_are_not_marked_external() -> None:
    html = md.render("[a](https://clinic.example/x) [b](https://other.example/) [c](/y/)").html
    assert '<a href="https://clinic.example/x">a</a>' in html
    assert '<a href="https://other.example/" rel="noopener">b</a>' in html
    assert '<a href="/y/">c</a>' in html


def test_raw_html_keeps_safe_markup_only() -> None:
    html = md.render(
        '<abbr title="post-traumatic stress disorder">PTSD</abbr> <b onclick="x">b</b>'
    ).html
    assert '<abbr title="post-traumatic stress disorder">PTSD</abbr>' in html
    assert "<b>b</b>" in html


def test_tel_mailto_and_sms_links_survive() -> None:
    html = md.render(
        "[988](tel:988) [mail](mailto:a@b.c) [text](sms:741741) [x](data:text/html,hi)"
    ).html
    assert 'href="tel:988"' in html and 'href="mailto:a@b.c"' in html
    assert 'href="sms:741741"' in html
    assert 'href="data' not in html


def test_reading_time_counts_words_and_is_at_least_one_minute() -> None:
    assert md.render("word " * 1000).reading_minutes == 5
    assert md.render("short").reading_minutes == 1


def test_inline_markdown_has_no_paragraph() -> None:
    assert md.render_inline("A *b* [c](https://d.example)") == (
        'A <em>b</em> <a href="https://d.example" rel="noopener">c</a>'
    )


def test_slugify_folds_accents_and_punctuation() -> None:
    assert slugify("What Causes PTSD?") == "what-causes-ptsd"
    assert slugify("Café — résumé") == "cafe-resume"
