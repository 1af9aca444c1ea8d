"""Bad content fails the build with messages naming file, field and rule; nothing is published."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import build, headwater, make_project, snapshot_tree, write

ARTICLE = """---
title: {title}
slug: {slug}
summary: {summary}
author: {author}
publishDate: {date}
{extra}
---

Body text.
"""


def article(
    *,
    title: str = "A Second Article",
    slug: str = "second-article",
    summary: str = "A summary.",
    author: str = "dr-test",
    date: str = "2026-03-01",
    extra: str = "",
) -> str:
    return ARTICLE.format(
        title=title, slug=slug, summary=summary, author=author, date=date, extra=extra
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "site")


def fails_with(project: Path, *parts: str) -> str:
    result = build(project)
    assert result.exit_code == 1, result.output
    assert "nothing was published" in result.output
    line = next((ln for ln in result.output.splitlines() if all(p in ln for p in parts)), None)
    assert line is not None, f"no line names all of {parts}:\n{result.output}"
    assert not (project / "public").exists()
    return line


def test_missing_required_field_names_file_field_and_rule(project: Path) -> None:
    text = article().replace("summary: A summary.\n", "")
    write(project, "article/second-article.md", text)
    fails_with(project, "content/article/second-article.md", "summary", "[required]")


def test_wrong_type_names_the_expected_type(project: Path) -> None:
    write(project, "article/second-article.md", article(extra="noindex: sometimes"))
    line = fails_with(project, "content/article/second-article.md", "noindex", "[type]")
    assert "true or false" in line and "'sometimes'" in line


def test_too_long_summary_gives_size_rule_and_length(project: Path) -> None:
    write(project, "article/second-article.md", article(summary="x" * 161))
    line = fails_with(project, "content/article/second-article.md", "summary", "[size]")
    assert "161" in line


def test_bad_slug_breaks_the_pattern_rule(project: Path) -> None:
    write(project, "article/second-article.md", article(slug="Bad_Slug"))
    line = fails_with(project, "content/article/second-article.md", "slug", "[regexp]")
    assert "Bad_Slug" in line


def test_duplicate_slug_names_both_entries(project: Path) -> None:
    write(project, "article/copy.md", article(slug="first-article"))
    line = fails_with(project, "content/article/copy.md", "slug", "[unique]")
    assert "content/article/first-article.md" in line
    result = build(project)
    assert any(
        "content/article/first-article.md: slug: [unique]" in ln and "copy.md" in ln
        for ln in result.output.splitlines()
    )


def test_link_to_missing_author_names_the_slug(project: Path) -> None:
    write(project, "article/second-article.md", article(author="dr-nobody"))
    line = fails_with(project, "content/article/second-article.md", "author", "[link]")
    assert "dr-nobody" in line and "an author" in line


def test_link_to_entry_of_wrong_type_is_refused(project: Path) -> None:
    write(project, "article/second-article.md", article(author="testing"))
    fails_with(project, "content/article/second-article.md", "author", "[linkContentType]")


def test_image_without_alt_text_is_refused(project: Path) -> None:
    write(project, "article/second-article.md", article(extra="heroImage: {file: images/pic.svg}"))
    # The fixture's first article gives the same file alt text; this use must still fail.
    fails_with(project, "content/article/second-article.md", "heroImage", "[altText]")


def test_image_that_is_not_an_image_breaks_the_mime_group(project: Path) -> None:
    write(project, "notes.txt", "plain text")
    write(
        project,
        "article/second-article.md",
        article(extra='heroImage: {file: notes.txt, alt: "x"}'),
    )
    fails_with(project, "content/article/second-article.md", "heroImage", "[linkMimetypeGroup]")


def test_malformed_yaml_names_the_file_and_line(project: Path) -> None:
    write(project, "article/second-article.md", "---\ntitle: [unclosed\nslug: x\n---\nBody\n")
    line = fails_with(project, "content/article/second-article.md", "(front matter)", "[yaml]")
    assert "line" in line


def test_unknown_field_is_reported_with_the_known_ones(project: Path) -> None:
    write(project, "article/second-article.md", article(extra="summery: typo"))
    line = fails_with(project, "content/article/second-article.md", "summery", "[unknownField]")
    assert "summary" in line


def test_every_problem_is_reported_at_once(project: Path) -> None:
    write(project, "article/second-article.md", article(summary="y" * 200, author="dr-nobody"))
    write(project, "topic/Bad.md", "---\nname: Bad\nslug: Bad Slug\n---\n")
    result = headwater(project, "validate", "--source", "local")
    assert result.exit_code == 1
    for expected in ("summary: [size]", "author: [link]", "content/topic/Bad.md:3: slug: [regexp]"):
        assert expected in result.output
    assert "3 content problems" in result.output


def test_validate_passes_on_good_content(project: Path) -> None:
    result = headwater(project, "validate", "--source", "local")
    assert result.exit_code == 0, result.output
    assert "are valid" in result.output


def test_slug_that_climbs_out_of_the_site_is_refused(project: Path) -> None:
    write(project, "article/second-article.md", article(slug="../../x"))
    fails_with(project, "second-article.md", "slug", "[regexp]")
    assert not (project.parent / "x").exists()


def test_slug_escape_is_refused_even_without_the_schema_pattern(project: Path) -> None:
    schema = project / "cms_schema" / "article.json"
    schema.write_text(schema.read_text().replace("^[a-z0-9]+(?:-[a-z0-9]+)*$", ".*"))
    write(project, "article/second-article.md", article(slug="../../x"))
    fails_with(project, "second-article.md", "slug", "[safePath]")
    assert not (project.parent / "x").exists()


def test_image_path_outside_content_is_refused(project: Path) -> None:
    (project / "secret.svg").write_text("<svg/>")
    write(
        project,
        "article/second-article.md",
        article(extra='heroImage: {file: ../secret.svg, alt: "x"}'),
    )
    fails_with(project, "second-article.md", "heroImage", "[file]")


def test_page_slug_that_takes_a_site_url_is_a_duplicate_url(project: Path) -> None:
    write(project, "page/blog.md", "---\ntitle: Blog page\nsummary: Clash.\n---\nText\n")
    fails_with(project, "content/page/blog.md", "[uniqueUrl]", "/blog/")


def test_navigation_to_a_missing_page_is_reported(project: Path) -> None:
    settings = project / "content" / "siteSettings.yml"
    settings.write_text(settings.read_text().replace("About|/about/", "About|/about-us/"))
    fails_with(project, "content/siteSettings.yml", "navigation", "/about-us/")


def test_failed_build_leaves_previous_output_byte_identical(project: Path) -> None:
    assert build(project).exit_code == 0
    before = snapshot_tree(project / "public")
    write(project, "article/second-article.md", article(summary="z" * 300))
    assert build(project).exit_code == 1
    assert snapshot_tree(project / "public") == before
    assert [p.name for p in project.iterdir() if p.name.startswith(".public")] == []


def test_broken_template_fails_with_its_name_and_keeps_output(project: Path) -> None:
    assert build(project).exit_code == 0
    before = snapshot_tree(project / "public")
    page = project / "templates" / "page.html"
    text = page.read_text().replace(
        "{% block content %}", "{% block content %}{{ entry.no_such_field }}"
    )
    page.write_text(text)
    result = build(project)
    assert result.exit_code == 2
    assert "templates/page.html" in result.output and "no_such_field" in result.output
    assert snapshot_tree(project / "public") == before


def test_template_syntax_error_names_the_template_and_line(project: Path) -> None:
    page = project / "templates" / "page.html"
    page.write_text(page.read_text() + "\n{% if %}\n")
    result = build(project)
    assert result.exit_code == 2
    assert "templates/page.html:" in result.output and "Traceback" not in result.output
