"""URLs that never break: renamed pages answer 301 with their address now (one hop, however
many renames), removed pages 410 with a helpful page, editors' redirects are checked, and the
history behind it survives a lost build cache and a new machine."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from support import build, make_project, write

from headwater.redirects import parse_redirects

ARTICLE = "article/first-article.md"


def rules(project: Path, folder: str = "public") -> dict[str, tuple[str, int]]:
    return parse_redirects((project / folder / "_redirects").read_text())


def set_slug(project: Path, slug: str) -> None:
    path = project / "content" / ARTICLE
    lines = [ln for ln in path.read_text().splitlines(keepends=True) if not ln.startswith("slug:")]
    lines.insert(1, f"slug: {slug}\n")
    path.write_text("".join(lines))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "site")


def production_ready(project: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """A production build on Netlify (its live site at url), with real contact details."""
    settings = project / "content" / "siteSettings.yml"
    lines = settings.read_text().splitlines(keepends=True)
    real = {"contactEmail": "hello@clinic.test", "contactPhone": "(412) 555-2368"}
    settings.write_text(
        "".join(
            f"{ln.split(':')[0]}: {real[ln.split(':')[0]]}\n" if ln.split(":")[0] in real else ln
            for ln in lines
        )
    )
    monkeypatch.setenv("URL", url)
    monkeypatch.setenv("CONTEXT", "production")


def test_every_old_url_of_a_renamed_page_leads_to_its_address_now_in_one_hop(
    project: Path,
) -> None:
    assert build(project).exit_code == 0
    assert rules(project) == {}
    set_slug(project, "second-name")
    assert build(project).exit_code == 0
    set_slug(project, "third-name")
    result = build(project)
    assert result.exit_code == 0, result.output
    assert rules(project) == {
        "/blog/first-article/": ("/blog/third-name/", 301),
        "/blog/second-name/": ("/blog/third-name/", 301),
    }
    assert (project / "public" / "blog" / "third-name" / "index.html").is_file()
    assert not (project / "public" / "blog" / "second-name").exists()

    # Back to a name it had: that URL is live again, and no rule may shadow it.
    set_slug(project, "first-article")
    assert build(project).exit_code == 0
    assert rules(project) == {
        "/blog/second-name/": ("/blog/first-article/", 301),
        "/blog/third-name/": ("/blog/first-article/", 301),
    }


def test_the_history_survives_a_lost_build_cache(project: Path) -> None:
    assert build(project).exit_code == 0
    set_slug(project, "renamed")
    assert build(project).exit_code == 0
    shutil.rmtree(project / ".cache")
    write(project, "page/new-page.md", "---\ntitle: New\nsummary: New.\n---\n\nNew.\n")
    assert build(project).exit_code == 0
    assert rules(project)["/blog/first-article/"] == ("/blog/renamed/", 301)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the test reads answers, not the server's log


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    handler = partial(QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_on_a_new_machine_the_history_comes_from_the_live_site(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build(project).exit_code == 0
    set_slug(project, "renamed")
    assert build(project).exit_code == 0
    live = tmp_path / "live"
    shutil.copytree(project / "public", live)
    # A fresh Netlify build: no cache, no output folder, only the deployed site.
    shutil.rmtree(project / ".cache")
    shutil.rmtree(project / "public")
    with serving(live) as url:
        production_ready(project, monkeypatch, url)
        result = build(project)
    assert result.exit_code == 0, result.output
    assert rules(project)["/blog/first-article/"] == ("/blog/renamed/", 301)


def test_a_live_site_that_cannot_be_reached_stops_the_build(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production_ready(project, monkeypatch, "http://127.0.0.1:9")  # nothing listens there
    result = build(project)
    assert result.exit_code == 3
    assert "URL history" in result.output
    assert not (project / "public").exists()


def test_an_unpublished_page_answers_410_with_a_helpful_page(project: Path) -> None:
    write(project, "page/old-offer.md", "---\ntitle: Old offer\nsummary: Gone soon.\n---\n\nX.\n")
    assert build(project).exit_code == 0
    (project / "content" / "page" / "old-offer.md").unlink()
    assert build(project).exit_code == 0
    assert rules(project)["/old-offer/"] == ("/410.html", 410)
    gone = (project / "public" / "410.html").read_text()
    assert "has been removed" in gone and 'href="/topics/testing/"' in gone
    assert 'href="/blog/"' in gone and 'name="robots" content="noindex"' in gone


REDIRECT = "---\nfrom: {source}\n{target}\n---\n"


def test_editors_redirects_are_published_with_their_status(project: Path) -> None:
    spring = REDIRECT.format(source="/spring/", target="toEntry: about")
    write(project, "redirect/spring.md", spring)
    write(
        project,
        "redirect/detour.md",
        REDIRECT.format(source="/detour/", target="toPath: /blog/\npermanent: false"),
    )
    result = build(project)
    assert result.exit_code == 0, result.output
    assert rules(project) == {"/spring/": ("/about/", 301), "/detour/": ("/blog/", 302)}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"redirect/a.md": ("/a/", "toPath: /b/"), "redirect/b.md": ("/b/", "toPath: /a/")},
            ["content/redirect/a.md", "content/redirect/b.md", "[chain]"],
        ),
        (
            {"redirect/a.md": ("/a/", "toPath: /b/"), "redirect/b.md": ("/b/", "toPath: /blog/")},
            ["content/redirect/a.md", "which content/redirect/b.md redirects", "[chain]"],
        ),
        (
            {"redirect/a.md": ("/about/", "toPath: /blog/")},
            ["content/redirect/a.md", "[redirectOverPage]", "content/page/about.md"],
        ),
        (
            {"redirect/a.md": ("/a/", "toPath: /nowhere/")},
            ["content/redirect/a.md", "[target]", "/nowhere/"],
        ),
    ],
)
def test_a_redirect_that_loops_chains_hides_a_page_or_leads_nowhere_is_refused(
    project: Path, files: dict[str, tuple[str, str]], expected: list[str]
) -> None:
    assert build(project).exit_code == 0
    before = (project / "public" / "_redirects").read_bytes()
    for name, (source, target) in files.items():
        write(project, name, REDIRECT.format(source=source, target=target))
    result = build(project)
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.output
    assert (project / "public" / "_redirects").read_bytes() == before


BODY = (
    "---\ntitle: Linking\nsummary: Links.\nauthor: dr-test\npublishDate: 2026-01-20\n---\n\n"
    "{body}\n"
)


def test_body_images_missing_or_unlabelled_and_relative_links_are_problems(
    project: Path,
) -> None:
    body = (
        "Intro.\n\n"
        "![](images/pic.svg)\n\n"
        "![A chart](images/missing.png)\n\n"
        "And [a relative link](other-page/)."
    )
    write(project, "article/linking.md", BODY.format(body=body))
    result = build(project)
    assert result.exit_code == 1, result.output
    origin = "content/article/linking.md"
    assert f"{origin}:10: body: [altText]" in result.output
    assert f"{origin}:12: body: [file] the image file does not exist" in result.output
    assert "images/missing.png" in result.output
    assert f"{origin}:14: body: [link] the link other-page/ is relative" in result.output
    assert not (project / "public").exists()


def test_a_body_link_to_a_missing_page_is_a_problem(project: Path) -> None:
    assert build(project).exit_code == 0
    before = (project / "public" / "index.html").read_bytes()
    body = "Intro.\n\nSee [a page that never was](/blog/does-not-exist/)."
    write(project, "article/linking.md", BODY.format(body=body))
    result = build(project)
    assert result.exit_code == 1, result.output
    assert (
        "content/article/linking.md:10: body: [link] links to /blog/does-not-exist/, which no "
        "page of the site has" in result.output
    )
    assert (project / "public" / "index.html").read_bytes() == before


def test_a_body_image_is_published_under_its_content_hash_with_its_size(project: Path) -> None:
    body = "Intro.\n\n![A blue square](images/pic.svg)\n"
    write(project, "article/linking.md", BODY.format(body=body))
    result = build(project)
    assert result.exit_code == 0, result.output
    html = (project / "public" / "blog" / "linking" / "index.html").read_text()
    img = html.split('<img src="/media/pic.', 1)[1].split(">", 1)[0]
    name = "pic." + img.split('"', 1)[0]
    assert (project / "public" / "media" / name).is_file()
    assert 'alt="A blue square"' in img and 'width="' in img and 'loading="lazy"' in img
    assert "images/pic.svg" not in html


def test_a_body_link_to_an_old_address_leads_to_the_page_now(project: Path) -> None:
    body = "Read [the first article](/blog/first-article/#first-section)."
    write(project, "article/linking.md", BODY.format(body=body))
    assert build(project).exit_code == 0
    set_slug(project, "renamed")
    result = build(project)
    assert result.exit_code == 0, result.output
    html = (project / "public" / "blog" / "linking" / "index.html").read_text()
    assert 'href="/blog/renamed/#first-section"' in html
    assert 'href="/blog/first-article/' not in html
    # A full build of the same site (its history read back from its output) agrees.
    assert build(project, "--full").exit_code == 0
    assert (project / "public" / "blog" / "linking" / "index.html").read_text() == html
