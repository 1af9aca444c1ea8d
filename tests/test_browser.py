"""The built site in Debian's Chromium: accessibility (axe), the production headers, reading
without JavaScript, the keyboard's first stop, and search."""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import tomllib
from collections.abc import Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright
from support import CHROMIUM_ARGS, build, make_repo_project
from test_search import fragments

import headwater.search

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTICLE_PATH = "/blog/what-causes-ptsd/"
ARTICLE_SOURCE = REPO_ROOT / "content/article/what-causes-ptsd.md"
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
# Pages every kind of visitor lands on; "topics" and "authors" stand for the first of each.
CHECKED_PAGES = ["/", "/blog/", ARTICLE_PATH, "/404.html", "topics", "authors", "/search/?q=PTSD"]


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves the output as Netlify does: /x/ from x/index.html, any unknown path with the
    404.html page and status 404, and every response with the site's own headers."""

    def __init__(self, *args: Any, headers: dict[str, str], **kwargs: Any) -> None:
        self.site_headers = headers  # set first: the base class handles the request in __init__
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in self.site_headers.items():
            self.send_header(name, value)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code != HTTPStatus.NOT_FOUND or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def production_headers() -> dict[str, str]:
    """The headers netlify.toml sends with every page, fit for plain http on 127.0.0.1."""
    with (REPO_ROOT / "netlify.toml").open("rb") as file:
        config = tomllib.load(file)
    headers = dict(next(h["values"] for h in config["headers"] if h["for"] == "/*"))
    # The test server speaks http: upgrading its requests to https would break every load.
    headers.pop("Strict-Transport-Security", None)
    csp = headers["Content-Security-Policy"]
    directives = [d.strip() for d in csp.split(";") if d.strip() != "upgrade-insecure-requests"]
    headers["Content-Security-Policy"] = "; ".join(directives)
    return headers


@pytest.fixture(scope="module")
def site_url(sample_site: Path) -> Iterator[str]:
    with serving(sample_site) as url:
        yield url


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve a built folder on 127.0.0.1 as Netlify would; yields its address."""
    handler = functools.partial(_SiteHandler, directory=str(folder), headers=production_headers())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def site_path(sample_site: Path, name: str) -> str:
    """A URL path from CHECKED_PAGES; a section name stands for that section's first page."""
    if name.startswith("/"):
        return name
    first = sorted(sample_site.glob(f"{name}/*/index.html"))
    assert first, f"the build wrote no /{name}/<slug>/ page"
    return f"/{first[0].parent.relative_to(sample_site).as_posix()}/"


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation.get('impact')}): {violation['help']}")
        lines += [
            f"    {node['target']}  {node.get('html', '')[:120]}" for node in violation["nodes"]
        ]
    return "\n".join(lines)


# The theme follows the visitor's colour scheme, so contrast is checked in both.
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", CHECKED_PAGES)
def test_page_has_no_accessibility_violations(
    browser: Browser, site_url: str, sample_site: Path, name: str, scheme: Literal["light", "dark"]
) -> None:
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        response = page.goto(site_url + site_path(sample_site, name))
        assert response is not None and response.ok
        violations = Axe().run(page, options=AXE_OPTIONS).response["violations"]
    finally:
        context.close()
    assert not violations, f"{len(violations)} axe violations:\n" + describe_violations(violations)


@pytest.mark.parametrize("name", CHECKED_PAGES)
def test_page_loads_cleanly_under_the_production_headers(
    page: Page, site_url: str, sample_site: Path, name: str
) -> None:
    # A style or script that the Content-Security-Policy refuses, or a missing file, shows
    # up as a console error or a failed response.
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    page.on(
        "response", lambda r: problems.append(f"{r.url}: {r.status}") if r.status >= 400 else None
    )
    response = page.goto(site_url + site_path(sample_site, name), wait_until="networkidle")
    assert response is not None and response.ok
    assert not problems, "\n".join(problems)


def test_unknown_path_gets_the_not_found_page(page: Page, site_url: str) -> None:
    response = page.goto(site_url + "/no-such-page/")
    assert response is not None and response.status == HTTPStatus.NOT_FOUND
    assert page.locator("h1").count() == 1
    assert page.locator("a[href='/']").count() >= 1, "the 404 page should link home"


def normalise(text: str) -> str:
    """Text as compared across Markdown and the browser: plain quotes, dashes, spaces."""
    for fancy, plain in (("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"), ("…", "...")):
        text = text.replace(fancy, plain)
    text = re.sub(r"[-–—]+", "-", text)
    return " ".join(text.split())


def plain_paragraphs(markdown_file: Path) -> list[str]:
    """The body paragraphs of a Markdown entry that hold no Markdown syntax at all."""
    text = markdown_file.read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("\n---", 2)[-1].split("\n", 1)[-1]
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.strip().splitlines()]
        if not lines or re.match(r"([#>|<!`*+-]|\d+[.)])", lines[0]):
            continue
        paragraph = " ".join(lines)
        if not re.search(r"[\[\]*_`<>&\\]", paragraph):
            paragraphs.append(paragraph)
    return paragraphs


def test_article_reads_without_javascript(browser: Browser, site_url: str) -> None:
    expected = plain_paragraphs(ARTICLE_SOURCE)
    assert expected, f"no plain paragraph found in {ARTICLE_SOURCE}"
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        response = page.goto(site_url + ARTICLE_PATH)
        assert response is not None and response.ok
        visible = {
            normalise(p.inner_text()) for p in page.locator("main p").all() if p.is_visible()
        }
        missing = [p for p in expected if normalise(p) not in visible]
        assert not missing, f"{len(missing)} of {len(expected)} paragraphs not visible:\n" + (
            "\n".join(p[:100] for p in missing)
        )
        assert page.locator("main h1").is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", ARTICLE_PATH])
def test_skip_link_is_the_first_thing_a_keyboard_reaches(
    page: Page, site_url: str, path: str
) -> None:
    page.goto(site_url + path)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => {
            const el = document.activeElement;
            return {tag: el.tagName, href: el.getAttribute("href") || "",
                    text: el.textContent.trim()};
        }"""
    )
    assert focused["tag"] == "A" and focused["href"].startswith("#"), focused
    assert "skip" in focused["text"].lower(), focused
    box = page.locator(":focus").bounding_box()
    assert box is not None and box["width"] > 1 and box["height"] > 1, (
        f"the focused skip link is not shown: {box}"
    )
    target = focused["href"][1:]
    in_main = page.evaluate(
        "(id) => { const el = document.getElementById(id);"
        " return el !== null && el.closest('main') !== null; }",
        target,
    )
    assert in_main, f"skip link target #{target} is not the main content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == f"#{target}"


@pytest.mark.parametrize("path", ["/", ARTICLE_PATH])
def test_the_crisis_banner_numbers_can_be_tapped(page: Page, site_url: str, path: str) -> None:
    page.goto(site_url + path)
    banner = page.locator(".crisis-banner")
    call = banner.get_by_role("link", name="988").first
    assert call.get_attribute("href") == "tel:988"
    assert call.is_visible()
    hrefs = [a.get_attribute("href") for a in banner.locator("a").all()]
    assert {"tel:988", "sms:988", "tel:911"} <= set(hrefs), hrefs


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_searching_from_the_header_finds_the_seed_article(
    browser: Browser, site_url: str, scheme: Literal["light", "dark"]
) -> None:
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(site_url + "/")
        box = page.get_by_role("search").get_by_role("searchbox", name="Search the site")
        box.fill("PTSD")
        box.press("Enter")
        page.wait_for_url("**/search/?q=PTSD")
        results = page.locator("[data-search-results] li")
        seed = results.get_by_role("link", name="What Causes PTSD?")
        seed.wait_for()  # the index answers in the browser: no fixed wait
        assert seed.get_attribute("href") == ARTICLE_PATH
        status = page.get_by_role("status")
        assert re.fullmatch(r"\d+ results? for “PTSD”\.", status.inner_text()), status.inner_text()
        assert results.first.locator("mark").count() >= 1, "the excerpt marks the words found"
        assert page.locator("[data-search-fallback]").is_hidden()
        violations = Axe().run(page, options=AXE_OPTIONS).response["violations"]
        assert not violations, describe_violations(violations)
        # The page's own form searches again without leaving it.
        own = page.get_by_role("searchbox", name="Search our articles and pages")
        assert own.input_value() == "PTSD"
        own.fill("zqxwvjk")
        own.press("Enter")
        page.get_by_text("No results for “zqxwvjk”.").wait_for()
        assert page.locator("[data-search-results] li").count() == 0
        assert page.evaluate("location.search") == "?q=zqxwvjk"
    finally:
        context.close()


def test_search_without_javascript_links_to_the_articles(browser: Browser, site_url: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site_url + "/")
        page.get_by_role("searchbox", name="Search the site").fill("trauma")
        page.get_by_role("search").get_by_role("button", name="Search").click()
        page.wait_for_url("**/search/?q=trauma")
        fallback = page.locator("[data-search-fallback]")
        assert fallback.is_visible()
        assert "needs JavaScript" in fallback.inner_text()
        hrefs = {a.get_attribute("href") for a in fallback.locator("a").all()}
        assert "/blog/" in hrefs
        assert any(h and h.startswith("/topics/") for h in hrefs), hrefs
    finally:
        context.close()


def test_search_merges_the_shards_of_a_large_site(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(headwater.search, "SHARD_PAGES", 4)  # the sample site in shards
    project = make_repo_project(tmp_path / "site")
    assert build(project).exit_code == 0
    public = project / "public"
    bundles = sorted(public.glob("pagefind/*/pagefind-entry.json"))
    assert len(bundles) >= 2
    # Every indexed page that mentions the word, whichever shard holds it.
    expected = {u for u, f in fragments(public).items() if "ketamine" in str(f["content"]).lower()}
    assert len(expected) >= 3
    with serving(public) as url:
        page.goto(url + "/search/?q=ketamine")
        page.get_by_role("status").filter(has_text="for “ketamine”").wait_for()
        found = {a.get_attribute("href") for a in page.locator("[data-search-results] h2 a").all()}
    assert found == expected
