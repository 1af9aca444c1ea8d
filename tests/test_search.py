"""The search index (search.py): what Pagefind indexes, and when a build writes it again.
The search page itself is tested in the browser (test_browser.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pagefind_bin
import pytest
from support import build, make_project, make_repo_project, snapshot_tree

import headwater.search
from headwater.search import indexed_part


def bytes_of(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot_tree(folder).items()}


def assert_index_is_a_full_builds(project: Path, full: Path) -> None:
    """The project's search index, built incrementally, is byte for byte a --full build's."""
    assert build(project, "--full", "--out", str(full)).exit_code == 0
    assert bytes_of(project / "public" / "pagefind") == bytes_of(full / "pagefind")


def fragments(public: Path) -> dict[str, dict[str, object]]:
    """Each indexed page's fragment (the text a result shows), by URL."""
    found = {}
    for path in public.glob("pagefind/*/fragment/*"):
        data = gzip.decompress(path.read_bytes())
        assert data.startswith(b"pagefind_dcd")
        fragment = json.loads(data.removeprefix(b"pagefind_dcd"))
        found[fragment["url"]] = fragment
    return found


def test_articles_and_pages_are_indexed_without_what_every_article_repeats(
    tmp_path: Path,
) -> None:
    project = make_repo_project(tmp_path / "site")
    assert build(project).exit_code == 0
    public = project / "public"
    entry = json.loads((public / "pagefind" / "0" / "pagefind-entry.json").read_text())
    assert json.loads((public / "pagefind" / "shards.json").read_text()) == {
        "count": 1,
        "bundles": ["/pagefind/0/"],
    }
    indexed = fragments(public)
    articles = {f"/blog/{p.stem}/" for p in (project / "content" / "article").glob("*.md")}
    pages = {f"/{p.stem}/" for p in (project / "content" / "page").glob("*.md")} - {"/home/"}
    assert set(indexed) == articles | pages
    assert entry["languages"]["en"]["page_count"] == len(indexed)
    seed = indexed["/blog/what-causes-ptsd/"]
    assert dict(seed["meta"])["title"] == "What Causes PTSD?"  # type: ignore[call-overload]
    text = str(seed["content"])
    assert "neurotransmitters" in text
    # The disclaimer, the consultation block and the contents list are on every article.
    assert "About this information" not in text and "On this page" not in text
    # Lists, the home page, the 404 and search pages hold nothing of their own to find.
    assert not {"/", "/blog/", "/search/"} & set(indexed)


def test_the_index_is_written_again_only_when_a_page_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    public = project / "public"
    before = snapshot_tree(public / "pagefind")

    # A new static file that no page links to: one more file, no page changes.
    (project / "static" / "humans.txt").write_text("Three Rivers Wellness\n")
    with caplog.at_level("INFO", logger="headwater"):
        result = build(project)
    assert result.exit_code == 0 and "1 written" in result.output, result.output
    assert "shards indexed" not in caplog.text
    assert snapshot_tree(public / "pagefind") == before
    caplog.clear()

    article = project / "content" / "article" / "first-article.md"
    article.write_text(article.read_text() + "\nA paragraph about zebrafinches.\n")
    with caplog.at_level("INFO", logger="headwater"):
        assert build(project).exit_code == 0
    assert "search: 1 of 1 shards indexed" in caplog.text
    assert any("zebrafinches" in str(f["content"]) for f in fragments(public).values())

    # The same site indexed from nothing gives the same bytes.
    assert_index_is_a_full_builds(project, tmp_path / "full")


def test_a_removed_page_leaves_the_index(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    first = project / "content" / "article" / "first-article.md"
    second = first.with_name("second-article.md")
    second.write_text(first.read_text().replace("title: ", "title: Second ", 1))
    assert build(project).exit_code == 0
    assert "/blog/second-article/" in fragments(project / "public")
    second.unlink()
    assert build(project).exit_code == 0
    assert set(fragments(project / "public")) == {"/blog/first-article/", "/about/"}


def test_without_pagefind_the_build_fails_and_the_site_stays_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    before = snapshot_tree(project / "public")
    article = project / "content" / "article" / "first-article.md"
    article.write_text(article.read_text() + "\nOne more paragraph.\n")

    def missing() -> Path:
        raise FileNotFoundError("no pagefind binary in this test")

    monkeypatch.setattr(pagefind_bin, "get_executable", missing)
    result = build(project)
    assert result.exit_code == 2
    assert "Pagefind binary is missing" in result.output
    assert snapshot_tree(project / "public") == before


def test_a_large_site_is_indexed_in_shards_and_an_edit_indexes_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(headwater.search, "SHARD_PAGES", 4)
    project = make_repo_project(tmp_path / "site")
    assert build(project).exit_code == 0
    public = project / "public"
    listed = json.loads((public / "pagefind" / "shards.json").read_text())
    count = listed["count"]
    assert count >= 4
    # A shard whose pages are all lists holds nothing to search and has no bundle.
    assert listed["bundles"] == [
        f"/pagefind/{n}/" for n in range(count) if (public / f"pagefind/{n}").is_dir()
    ]
    everything = fragments(public)
    assert "/blog/what-causes-ptsd/" in everything

    article = project / "content" / "article" / "what-causes-ptsd.md"
    article.write_text(article.read_text() + "\nA paragraph about zebrafinches.\n")
    caplog.clear()
    with caplog.at_level("INFO", logger="headwater"):
        assert build(project).exit_code == 0
    assert f"search: 1 of {count} shards indexed" in caplog.text
    assert set(fragments(public)) == set(everything)
    assert "zebrafinches" in str(fragments(public)["/blog/what-causes-ptsd/"]["content"])
    assert_index_is_a_full_builds(project, tmp_path / "full")


def test_an_edit_outside_what_search_reads_indexes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    before = snapshot_tree(project / "public" / "pagefind")
    settings = project / "content" / "siteSettings.yml"
    settings.write_text(settings.read_text().replace("tagline: A tiny", "tagline: A small", 1))
    with caplog.at_level("INFO", logger="headwater"):
        result = build(project)
    # Every page's header changed, and no page's searchable part.
    assert (
        result.exit_code == 0
        and "A small complete site"
        in (project / "public" / "blog" / "first-article" / "index.html").read_text()
    )
    assert "shards indexed" not in caplog.text
    assert snapshot_tree(project / "public" / "pagefind") == before


def test_a_page_that_shows_a_changed_entry_is_indexed_once_it_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The changed entry's own page (the author's) renders first and is indexed while the
    # pages that show it render; an article's byline is in its indexed part, so its shard is
    # indexed again once the article is written.
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    public = project / "public"
    author = project / "content" / "author" / "dr-test.md"
    author.write_text(author.read_text().replace("name: Dr. Test", "name: Dr. Zebrafinch", 1))
    caplog.clear()
    with caplog.at_level("INFO", logger="headwater"):
        assert build(project).exit_code == 0
    assert caplog.text.count("search: 1 of 1 shards indexed") == 1, caplog.text
    assert "Zebrafinch" in str(fragments(public)["/blog/first-article/"]["content"])
    assert_index_is_a_full_builds(project, tmp_path / "full")


def test_pages_rendered_while_indexing_are_indexed_as_they_are_now(tmp_path: Path) -> None:
    # A retitled article renders first and its shard is indexed while the pages that show its
    # title render, among them a second article (its related list). The spare folder holds
    # that article as it was two builds ago, or not at all: the index must show it as it is.
    project = make_project(tmp_path / "site")
    first = project / "content" / "article" / "first-article.md"
    second = first.with_name("second-article.md")
    assert build(project).exit_code == 0

    def retitle(title: str) -> None:
        lines = first.read_text().splitlines(keepends=True)
        first.write_text(
            "".join(f"title: {title}\n" if ln.startswith("title:") else ln for ln in lines)
        )

    def same_as_full(word: str) -> None:
        assert build(project).exit_code == 0
        assert word in str(fragments(project / "public")["/blog/second-article/"]["content"])
        assert_index_is_a_full_builds(project, tmp_path / "full")

    second.write_text(first.read_text().replace("title: ", "title: Second ", 1))
    assert build(project).exit_code == 0  # the spare folder has no second article
    retitle("Renamed First")
    same_as_full("Second")
    second.write_text(second.read_text() + "\nA paragraph about zebrafinches.\n")
    assert build(project).exit_code == 0  # the spare's second article is the one without it
    retitle("Renamed Again")
    same_as_full("zebrafinches")


def test_a_page_the_spare_already_holds_is_indexed_as_it_is_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An author's name restored. The spare folder (the build before last) already holds the
    # article as it must be now (its byline, in its indexed part, shows the name), so it is not
    # rendered again, while the live folder's shows the other name: the article's shard is
    # indexed again, from the spare, once.
    project = make_project(tmp_path / "site")
    author = project / "content" / "author" / "dr-test.md"
    original = author.read_text()
    assert build(project).exit_code == 0
    author.write_text(original.replace("name: Dr. Test", "name: Dr. Zebrafinch", 1))
    assert build(project).exit_code == 0
    article = "/blog/first-article/"
    assert "Zebrafinch" in str(fragments(project / "public")[article]["content"])
    author.write_text(original)
    caplog.clear()
    with caplog.at_level("INFO", logger="headwater"):
        assert build(project).exit_code == 0
    assert caplog.text.count("search: 1 of 1 shards indexed") == 1, caplog.text
    assert "Zebrafinch" not in str(fragments(project / "public")[article]["content"])
    assert_index_is_a_full_builds(project, tmp_path / "full")


def test_the_indexed_part_is_the_marked_element_with_what_it_nests(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_bytes(
        b"<html><body><header>Menu</header><main>"
        b"<article class=a data-pagefind-body><h1>T</h1><article>Card</article><p>x</p></article>"
        b"<article>Related</article></main></body></html>"
    )
    assert indexed_part(page) == (
        b"<article class=a data-pagefind-body><h1>T</h1><article>Card</article><p>x</p></article>"
    )
    page.write_bytes(b"<html><body><main><p>A list</p></main></body></html>")
    assert indexed_part(page) is None
    assert indexed_part(tmp_path / "missing.html") is None
