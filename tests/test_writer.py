"""The writer swaps whole sites in, never writes outside the output folder, never half-writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import OutputError
from headwater.site import _SAFE_URL, output_path
from headwater.writer import Publisher, list_files, publish, safe_relative, spare_folder


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\b", "", "a/\x00b"]
)
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(OutputError, match="outside the output folder"):
        safe_relative(path)


def test_refused_path_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "public"
    with pytest.raises(OutputError):
        publish({"index.html": b"ok", "../evil.html": b"x"}, out)
    assert not out.exists()
    assert not (tmp_path / "evil.html").exists()
    assert list(tmp_path.iterdir()) == []


@given(st.from_regex(_SAFE_URL, fullmatch=True))
def test_any_url_the_site_accepts_stays_inside_the_output(url: str) -> None:
    assert _SAFE_URL.match(url)  # every example is one the site accepts: none is skipped
    relative = safe_relative(output_path(url))
    root = Path("/srv/out")
    target = (root / relative).resolve()
    assert target.is_relative_to(root) and target != root
    assert relative.name == "index.html" or not url.endswith("/")


def test_swap_replaces_the_whole_site(tmp_path: Path) -> None:
    out = tmp_path / "public"
    publish({"a.html": b"a", "dir/b.html": b"b"}, out)
    report = publish({"a.html": b"A", "c.html": b"c"}, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.html",
        "c.html",
    ]
    assert (out / "a.html").read_bytes() == b"A"
    assert (report.written, report.unchanged, report.removed) == (2, 0, 1)
    # The previous site is kept beside it, to be brought up to date by the next build.
    assert (spare_folder(out) / "dir" / "b.html").read_bytes() == b"b"


def test_unchanged_files_keep_their_inode(tmp_path: Path) -> None:
    out = tmp_path / "public"
    publish({"same.html": b"same", "other.html": b"1"}, out)
    inode = (out / "same.html").stat().st_ino
    report = publish({"same.html": b"same", "other.html": b"2"}, out)
    assert (out / "same.html").stat().st_ino == inode
    assert (report.written, report.unchanged) == (1, 1)


def test_identical_output_is_not_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "public"
    source = tmp_path / "style.css"
    source.write_bytes(b"body{}")
    publish({"index.html": b"x", "s.css": source}, out)
    mtime = (out / "index.html").stat().st_mtime_ns
    report = publish({"index.html": b"x", "s.css": source}, out)
    assert not report.changed
    assert (out / "index.html").stat().st_mtime_ns == mtime


def test_half_written_spare_from_a_killed_build_is_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "public"
    publish({"index.html": b"x"}, out)
    spare = spare_folder(out)
    (spare / "half").mkdir(parents=True)
    (spare / "half" / ".index.html.tmp").write_bytes(b"partial")
    publish({"index.html": b"y"}, out)
    assert sorted(p.name for p in out.rglob("*")) == ["index.html"]
    assert (out / "index.html").read_bytes() == b"y"


def test_output_that_is_a_file_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "public"
    out.write_text("not a folder")
    with pytest.raises(OutputError, match="not a folder"):
        publish({"index.html": b"x"}, out)
    assert out.read_text() == "not a folder"


def test_link_many_makes_the_spare_hold_the_live_files(tmp_path: Path) -> None:
    out = tmp_path / "public"
    publish({"index.html": b"home", "blog/a/index.html": b"a", "blog/b/index.html": b"b"}, out)
    publisher = Publisher(out)
    publisher.put("blog/a/index.html", b"an older a")  # a file in the way is replaced
    publisher.link_many(["index.html", "blog/a/index.html", "blog/b/index.html"])
    for name in ("index.html", "blog/a/index.html", "blog/b/index.html"):
        assert (publisher.spare / name).stat().st_ino == (out / name).stat().st_ino
    assert list_files(publisher.spare) == {"index.html", "blog/a/index.html", "blog/b/index.html"}
    with pytest.raises(OutputError):
        publisher.link_many(["../outside.html"])


def test_list_files_lists_files_not_links_or_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.html").write_text("c")
    (tmp_path / "top.txt").write_text("t")
    (tmp_path / "link.txt").symlink_to(tmp_path / "top.txt")
    (tmp_path / "dirlink").symlink_to(tmp_path / "a")
    assert list_files(tmp_path) == {"a/b/c.html", "top.txt"}
    assert list_files(tmp_path / "missing") == set()
