"""Incremental builds: whatever the sequence of edits, the result equals a full build's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import build, make_project, snapshot_tree

ARTICLE = """---
title: {title}
summary: Summary of {slug}.
author: dr-test
publishDate: 2026-0{month}-1{day}
topics: [{topics}]
---

{body}
"""

EDITS = st.sampled_from(
    ["add", "body", "title", "topics", "delete", "template", "settings", "noop", "retitle-first"]
)


def bytes_of(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot_tree(folder).items()}


def apply(project: Path, edit: str, n: int) -> None:
    articles = project / "content" / "article"
    existing = sorted(articles.glob("*.md"))
    extra = [p for p in existing if p.stem != "first-article"]
    if edit == "add" or (edit in ("body", "title", "topics", "delete") and not extra):
        slug = f"article-{n}"
        text = ARTICLE.format(
            title=f"Article {n}",
            slug=slug,
            month=1 + n % 9,
            day=n % 10,
            topics="testing",
            body=f"Body of article {n}.\n\n## Part {n}\n\nText.",
        )
        (articles / f"{slug}.md").write_text(text)
    elif edit == "body":
        path = extra[n % len(extra)]
        path.write_text(path.read_text() + f"\nAnother paragraph {n}.\n")
    elif edit == "title":
        path = extra[n % len(extra)]
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(
            "".join(f"title: Retitled {n}\n" if ln.startswith("title:") else ln for ln in lines)
        )
    elif edit == "topics":
        path = extra[n % len(extra)]
        text = path.read_text()
        swapped = "topics: []" if "topics: [testing]" in text else "topics: [testing]"
        path.write_text(
            text.replace("topics: [testing]", "@@")
            .replace("topics: []", "topics: [testing]")
            .replace("@@", "topics: []")
            if swapped
            else text
        )
    elif edit == "delete":
        extra[n % len(extra)].unlink()
    elif edit == "template":
        card = project / "templates" / "base.html"
        card.write_text(card.read_text().replace("</body>", f"<!-- edit {n} -->\n</body>", 1))
    elif edit == "settings":
        path = project / "content" / "siteSettings.yml"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(
            "".join(f"tagline: Tagline {n}\n" if ln.startswith("tagline:") else ln for ln in lines)
        )
    elif edit == "retitle-first":
        path = articles / "first-article.md"
        text = path.read_text()
        title = "The First Article" if "Renamed First" in text else "Renamed First"
        path.write_text(
            "".join(
                f"title: {title}\n" if ln.startswith("title:") else ln
                for ln in text.splitlines(keepends=True)
            )
        )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDITS, min_size=1, max_size=6))
def test_incremental_output_equals_a_full_build(edits: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "site")
        assert build(project).exit_code == 0
        for n, edit in enumerate(edits):
            apply(project, edit, n)
            result = build(project)
            assert result.exit_code == 0, result.output
            full = build(project, "--full", "--out", str(project / "full"))
            assert full.exit_code == 0, full.output
            assert bytes_of(project / "public") == bytes_of(project / "full"), (edits, n)


def test_unchanged_rebuild_renders_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    result = build(project)
    assert "nothing changed; 0 rendered" in result.output


def test_body_edit_renders_only_the_pages_that_show_the_article(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    before = bytes_of(project / "public")
    path = project / "content" / "article" / "first-article.md"
    path.write_text(path.read_text() + "\nOne more paragraph.\n")
    result = build(project)
    # The article, the home page, the blog index, its topic and author pages, and the feed.
    assert "6 rendered" in result.output, result.output
    after = bytes_of(project / "public")
    changed = {n for n in after if before.get(n) != after[n]}
    # Only the article's page changed, and with it the search index's files that hold it.
    assert {n for n in changed if not n.startswith("pagefind/")} == {
        "blog/first-article/index.html"
    }
    assert f"{len(changed)} written" in result.output


def test_a_corrupt_manifest_means_a_full_correct_build(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    (project / "content" / "page" / "about.md").write_text(
        "---\ntitle: About us again\nsummary: Changed.\n---\n\nChanged.\n"
    )
    manifests = list((project / ".cache" / "headwater" / "manifests").glob("*.manifest.sqlite3"))
    assert manifests
    for manifest in manifests:
        for damaged in manifest.parent.glob(manifest.name + "*"):  # with its -wal and -shm
            damaged.write_bytes(b"not a database" * 100)
    result = build(project)
    assert result.exit_code == 0
    assert "About us again" in (project / "public" / "about" / "index.html").read_text()


def test_untouched_inputs_skip_the_build_and_any_write_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import headwater.build
    import headwater.manifest
    import headwater.sources.local

    # Trust timestamps at once (normally a file must be 2 s old), so no test has to wait.
    monkeypatch.setattr(headwater.manifest, "RACY_NS", -(10**12))
    monkeypatch.setattr(headwater.sources.local, "RACY_NS", -(10**12))
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    assert build(project).exit_code == 0  # stamps the inputs

    def must_not_run(*args: object) -> None:
        raise AssertionError("the content was read although no input changed")

    with monkeypatch.context() as patch:
        patch.setattr(headwater.build, "_check", must_not_run)
        result = build(project)
    assert "nothing changed; 0 rendered" in result.output

    # Same size, and the old modification time put back: only ctime shows the write.
    path = project / "content" / "page" / "about.md"
    before = path.stat()
    path.write_text(path.read_text().replace("We are a fixture.", "We are a fixtur!."))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert build(project).exit_code == 0
    assert "We are a fixtur!." in (project / "public" / "about" / "index.html").read_text()


def test_output_folders_of_the_same_name_keep_manifests_of_their_own(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    first, second = tmp_path / "a" / "public", tmp_path / "b" / "public"
    assert build(project, "--out", str(first)).exit_code == 0
    assert build(project, "--out", str(second)).exit_code == 0
    again = build(project, "--out", str(first))
    assert "nothing changed; 0 rendered" in again.output, again.output


def test_an_edit_that_moves_no_page_is_built_from_the_site_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    path = project / "content" / "article" / "first-article.md"
    path.write_text(path.read_text().replace("title: ", "title: Renamed ", 1))
    with caplog.at_level("INFO", logger="headwater"):
        result = build(project)
    assert result.exit_code == 0
    assert "1 changed entries are read by" in caplog.text
    full = build(project, "--full", "--out", str(project / "full"))
    assert bytes_of(project / "public") == bytes_of(project / "full")
    assert (
        full.exit_code == 0
        and "Renamed " in (project / "public" / "blog" / "index.html").read_text()
    )


def test_a_lost_content_cache_does_not_stop_a_build_from_the_site_index(tmp_path: Path) -> None:
    import shutil

    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    shutil.rmtree(project / ".cache" / "headwater" / "content")
    path = project / "content" / "article" / "first-article.md"
    path.write_text(path.read_text() + "\nOne more paragraph.\n")
    assert build(project).exit_code == 0
    assert build(project, "--full", "--out", str(project / "full")).exit_code == 0
    assert bytes_of(project / "public") == bytes_of(project / "full")


def test_a_primed_spare_folder_makes_the_next_build_write_only_its_change(tmp_path: Path) -> None:
    from headwater.build import prime_spare
    from headwater.config import make_options

    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    out, spare = project / "public", project / ".public.spare"
    options = make_options(
        root=project, out=str(out), base_url=None, source="local", preview=False, full=False, env={}
    )
    linked = prime_spare(options)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert linked == len(files) > 0
    assert all(os.path.samefile(out / name, spare / name) for name in files)
    assert prime_spare(options) == 0  # already primed: nothing to do

    article = project / "content" / "article" / "first-article.md"
    article.write_text(article.read_text() + "\nA primed paragraph.\n")
    result = build(project)
    assert result.exit_code == 0, result.output
    # Nothing removed but the search index's files the edit replaced.
    assert all(n.parts[0] == "pagefind" for n in files if not (out / n).exists())
    unchanged = [
        n
        for n in files
        if n.as_posix() != "blog/first-article/index.html"
        and n.parts[0] != "pagefind"
        and (out / n).exists()
    ]
    # Pages the edit did not touch are still the very files the first build wrote.
    assert sum(os.path.samefile(out / n, spare / n) for n in unchanged) == len(unchanged)
    assert "A primed paragraph." in (out / "blog/first-article/index.html").read_text()


def test_a_site_index_of_another_format_plans_the_whole_site_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An index written by the previous version (format 1: no deep digests) is not read; the
    # build plans everything, writes a new index, and the next edit is built from that one.
    import pickle
    import sqlite3

    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    (index,) = [
        path
        for path in (project / ".cache" / "headwater" / "manifests").glob("*.sqlite3")
        if not path.name.endswith(".manifest.sqlite3")  # not the folder's build manifest
    ]
    with sqlite3.connect(index) as db:
        (stored,) = db.execute("SELECT value FROM meta WHERE name = 'stamp'").fetchone()
        stamp = {**pickle.loads(stored), "format": 1}
        db.execute("UPDATE meta SET value = ? WHERE name = 'stamp'", (pickle.dumps(stamp),))
        db.execute("DROP TABLE deep")
    path = project / "content" / "article" / "first-article.md"
    for n in (1, 2):
        path.write_text(path.read_text() + f"\nParagraph {n}.\n")
        caplog.clear()
        with caplog.at_level("INFO", logger="headwater"):
            assert build(project).exit_code == 0
        planned = "read, checked and planned" in caplog.text
        assert planned == (n == 1), caplog.text
        assert build(project, "--full", "--out", str(project / "full")).exit_code == 0
        assert bytes_of(project / "public") == bytes_of(project / "full")
