"""`headwater new` writes a valid draft from cms_schema/; drafts stay out of `build` and show in
previews."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import build, headwater, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "site")


def test_a_new_article_is_a_valid_draft_with_the_models_help_texts(project: Path) -> None:
    result = headwater(project, "new", "article", "Sleep and Trauma: What Helps?")
    assert result.exit_code == 0, result.output
    path = project / "content" / "article" / "sleep-and-trauma-what-helps.md"
    text = path.read_text()
    assert "draft: true" in text
    assert "title: 'Sleep and Trauma: What Helps?'" in text
    assert "slug: sleep-and-trauma-what-helps" in text
    assert "author: dr-test" in text  # the only author there is
    assert "# The headline, at most 120 characters." in text  # the editor's help text
    assert "# topics: []" in text  # optional fields, ready to fill in
    validated = headwater(project, "validate", "--source", "local")
    assert validated.exit_code == 0, validated.output

    assert build(project).exit_code == 0
    assert not (project / "public" / "blog" / "sleep-and-trauma-what-helps").exists()
    assert build(project, "--preview").exit_code == 0
    assert (project / "public-preview" / "blog" / "sleep-and-trauma-what-helps").is_dir()

    path.write_text(text.replace("draft: true\n", ""))
    assert build(project).exit_code == 0
    assert (project / "public" / "blog" / "sleep-and-trauma-what-helps" / "index.html").is_file()


def test_new_refuses_an_existing_file_and_a_type_without_pages(project: Path) -> None:
    assert headwater(project, "new", "topic", "Testing").exit_code == 2  # testing.md exists
    result = headwater(project, "new", "siteSettings", "Another")
    assert result.exit_code == 2 and "no slug" in result.output
    assert headwater(project, "new", "recipe", "Soup").exit_code == 2


def test_a_draft_flag_must_be_true_or_false(project: Path) -> None:
    path = project / "content" / "article" / "first-article.md"
    path.write_text(path.read_text().replace("---\n", "---\ndraft: maybe\n", 1))
    result = build(project)
    assert result.exit_code == 1
    expected = "content/article/first-article.md:2: draft: [type] must be true or false"
    assert expected in result.output
