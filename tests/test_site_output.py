"""Site-wide rules over the built sample site: valid HTML, links that resolve, feeds, metadata."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
ARTICLE = "blog/what-causes-ptsd/index.html"
NOT_FOUND = "404.html"
CSS_NAME = re.compile(r"/static/css/site\.[0-9a-f]{10}\.css")
SEARCH_CSS = re.compile(r"/static/css/search\.[0-9a-f]{10}\.css")
SEARCH_SCRIPT = re.compile(r"/static/js/search\.[0-9a-f]{10}\.js")
MEDIA_NAME = re.compile(r"[^/]+\.[0-9a-f]{10}\.[a-z0-9]+")
# Schemes a page may link to that name no file of the site.
OFF_SITE_SCHEMES = {"mailto", "tel", "sms", "data"}
# <meta> tags whose content is a URL of the site.
URL_METAS = {"og:url", "og:image", "twitter:image"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    line: int

    def describe(self) -> str:
        return f"<{self.tag}> on line {self.line}"


@dataclass
class Page:
    """One built HTML file, parsed once: its elements, ids, title and script blocks."""

    path: str  # relative to the site root, posix
    url: str  # the absolute URL it is served at
    elements: list[Element] = field(default_factory=list, repr=False)
    titles: list[str] = field(default_factory=list, repr=False)
    scripts: list[tuple[dict[str, str], str]] = field(default_factory=list, repr=False)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        """Elements with this tag whose attributes equal `attrs` (case-insensitive values)."""
        return [
            e
            for e in self.elements
            if e.tag == tag
            and all(
                e.attrs.get(k.replace("_", "-"), "").lower() == v.lower() for k, v in attrs.items()
            )
        ]

    def meta(self, key: str) -> list[str]:
        """Contents of the <meta> tags named `key` by name= or property=."""
        return [
            e.attrs.get("content", "")
            for e in self.elements
            if e.tag == "meta" and key in (e.attrs.get("name"), e.attrs.get("property"))
        ]

    @property
    def ids(self) -> set[str]:
        found = {e.attrs["id"] for e in self.elements if "id" in e.attrs}
        return found | {
            e.attrs["name"] for e in self.elements if e.tag == "a" and "name" in e.attrs
        }

    @property
    def noindex(self) -> bool:
        return any("noindex" in content.lower() for content in self.meta("robots"))

    @property
    def jsonld(self) -> list[str]:
        return [text for attrs, text in self.scripts if attrs.get("type") == "application/ld+json"]


class _PageParser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._capturing: tuple[str, dict[str, str]] | None = None
        self._text: list[str] = []
        self._svg_depth = 0  # an inline SVG's <title> is not the document's

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.page.elements.append(Element(tag, values, self.getpos()[0]))
        if tag == "svg":
            self._svg_depth += 1
        if tag == "script" or (tag == "title" and not self._svg_depth):
            self._capturing = (tag, values)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._capturing:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._svg_depth:
            self._svg_depth -= 1
        if self._capturing and self._capturing[0] == tag:
            text = "".join(self._text)
            if tag == "title":
                self.page.titles.append(text.strip())
            else:
                self.page.scripts.append((self._capturing[1], text))
            self._capturing = None


def page_url(base_url: str, path: str) -> str:
    """The address a file is served at, with pretty URLs: blog/x/index.html -> /blog/x/."""
    if path == "index.html":
        return base_url + "/"
    if path.endswith("/index.html"):
        return f"{base_url}/{path.removesuffix('index.html')}"
    return f"{base_url}/{path}"


@pytest.fixture(scope="module")
def pages(sample_site: Path, html_files: list[Path], base_url: str) -> dict[str, Page]:
    assert html_files, f"the build wrote no HTML into {sample_site}"
    parsed = {}
    for file in html_files:
        path = file.relative_to(sample_site).as_posix()
        page = Page(path, page_url(base_url, path))
        parser = _PageParser(page)
        parser.feed(file.read_text(encoding="utf-8"))
        parser.close()
        parsed[path] = page
    return parsed


def site_file(site: Path, url_path: str) -> tuple[Path, str | None]:
    """The file a site path is served from, and what is wrong with it (None if nothing)."""
    relative = unquote(url_path).lstrip("/")
    if url_path.endswith("/"):
        target = site / relative / "index.html"
    else:
        target = site / relative
        if target.is_dir():
            return target, "is a directory: the link needs a trailing slash"
    if not target.is_file():
        return target, "resolves to no file in the output"
    return target, None


def url_references(page: Page) -> Iterator[tuple[Element, str]]:
    """Every URL a page refers to: href, src, each srcset candidate, URL-valued meta tags."""
    for element in page.elements:
        for name in ("href", "src"):
            if name in element.attrs:
                yield element, element.attrs[name]
        if "srcset" in element.attrs:
            for candidate in element.attrs["srcset"].split(","):
                if candidate.strip():
                    yield element, candidate.split()[0]
        key = element.attrs.get("property") or element.attrs.get("name")
        if element.tag == "meta" and key in URL_METAS:
            yield element, element.attrs.get("content", "")


def test_every_page_is_valid_html(
    sample_site: Path, html_files: list[Path], vnu_command: list[str], tmp_path: Path
) -> None:
    # A page with a known error goes into the same run, so a checker that silently checked
    # nothing cannot pass this test.
    canary = tmp_path / "canary.html"
    canary.write_text("<!DOCTYPE html><html lang=en><title>x</title><p></span>\n")
    result = subprocess.run(
        [
            *vnu_command,
            "--errors-only",
            "--format",
            "json",
            "--stdout",
            "--skip-non-html",
            str(sample_site),
            str(canary),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        messages = json.loads(result.stdout)["messages"]
    except (json.JSONDecodeError, KeyError):
        pytest.fail(f"the Nu checker gave no JSON report:\n{result.stdout}\n{result.stderr}")
    canary_url = canary.as_uri().replace("file:///", "file:/")
    assert any(m.get("url") == canary_url for m in messages), (
        f"the Nu checker did not report the canary's error; it may not have run: {messages}"
    )
    problems = [
        f"{m.get('url', '?').split(str(sample_site), 1)[-1]}:{m.get('lastLine', '?')}: "
        f"{m.get('message')}  [{(m.get('extract') or '').strip()}]"
        for m in messages
        if m.get("url") != canary_url
    ]
    assert not problems, f"{len(problems)} HTML errors:\n" + "\n".join(problems)
    assert len(html_files) > 1


def test_every_internal_reference_resolves(
    sample_site: Path, pages: dict[str, Page], base_url: str
) -> None:
    problems = []
    for page in pages.values():
        for element, reference in url_references(page):
            where = f"{page.path}: {element.describe()} {reference!r}"
            ref = reference.strip()
            if not ref:
                problems.append(f"{where}: empty URL")
                continue
            parts = urlsplit(ref)
            if parts.scheme in OFF_SITE_SCHEMES:
                continue
            if parts.scheme not in ("", "http", "https"):
                problems.append(f"{where}: unexpected scheme {parts.scheme!r}")
                continue
            if page.path == NOT_FOUND and not parts.scheme and not ref.startswith(("/", "#")):
                # Netlify serves 404.html at whatever path was asked for.
                problems.append(f"{where}: 404.html must use root-relative URLs")
            target_url = urlsplit(urljoin(page.url, ref))
            if f"{target_url.scheme}://{target_url.netloc}" != base_url:
                continue
            target, problem = site_file(sample_site, target_url.path or "/")
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            fragment = unquote(target_url.fragment)
            if fragment and target.suffix == ".html":
                target_page = pages[target.relative_to(sample_site).as_posix()]
                if fragment not in target_page.ids:
                    problems.append(f"{where}: no id {fragment!r} on {target_page.path}")
    assert not problems, f"{len(problems)} broken references:\n" + "\n".join(problems)


def test_every_page_has_its_metadata(pages: dict[str, Page], base_url: str) -> None:
    problems = []
    for page in pages.values():
        found: list[str] = []
        html = page.find("html")
        if not html or not html[0].attrs.get("lang"):
            found.append("no <html lang>")
        if len(page.titles) != 1 or not page.titles[0]:
            found.append(f"needs one non-empty <title>, has {page.titles}")
        if (h1s := len(page.find("h1"))) != 1:
            found.append(f"needs exactly one <h1>, has {h1s}")
        descriptions = page.meta("description")
        if len(descriptions) != 1 or not 0 < len(descriptions[0].strip()) <= 160:
            found.append(f"needs one meta description of 1-160 characters, has {descriptions}")
        canonicals = [e.attrs.get("href", "") for e in page.find("link", rel="canonical")]
        if page.noindex or page.path == NOT_FOUND:
            # A page kept out of search engines may name no canonical URL.
            wrong = [c for c in canonicals if not c.startswith(base_url + "/")]
            if wrong:
                found.append(f"canonical not under {base_url}: {wrong}")
        elif canonicals != [page.url]:
            found.append(f"needs one canonical link {page.url}, has {canonicals}")
        if not [c for c in page.meta("og:title") if c.strip()]:
            found.append("no og:title")
        if not page.meta("twitter:card"):
            found.append("no twitter:card")
        if not page.jsonld:
            found.append("no JSON-LD")
        for block in page.jsonld:
            try:
                json.loads(block)
            except json.JSONDecodeError as error:
                found.append(f"JSON-LD does not parse: {error}")
        problems += [f"{page.path}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


def test_every_page_shares_a_1200_by_630_png_of_the_site(
    pages: dict[str, Page], sample_site: Path, base_url: str
) -> None:
    problems = []
    for page in pages.values():
        images = page.meta("og:image")
        if len(images) != 1 or not images[0].startswith(base_url + "/"):
            problems.append(f"{page.path}: needs one absolute og:image of the site, has {images}")
            continue
        found = []
        if page.meta("twitter:image") != images:
            found.append(f"twitter:image {page.meta('twitter:image')} is not {images}")
        if page.meta("twitter:card") != ["summary_large_image"]:
            found.append(f"twitter:card is {page.meta('twitter:card')}")
        size = (page.meta("og:image:width"), page.meta("og:image:height"))
        if size != (["1200"], ["630"]):
            found.append(f"og:image:width/height are {size}")
        if not [alt for alt in page.meta("og:image:alt") if alt.strip()]:
            found.append("no og:image:alt")
        target, wrong = site_file(sample_site, urlsplit(images[0]).path)
        if wrong:
            found.append(f"og:image {images[0]} {wrong}")
        else:
            with Image.open(target) as image:
                if (image.format, image.size) != ("PNG", (1200, 630)):
                    found.append(f"og:image is a {image.format} of {image.size}")
        problems += [f"{page.path}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


def jsonld_types(value: Any) -> Iterator[str]:
    """Every @type anywhere in a JSON-LD document, nested nodes and @graph included."""
    if isinstance(value, dict):
        kind = value.get("@type")
        if isinstance(kind, str):
            yield kind
        elif isinstance(kind, list):
            yield from (k for k in kind if isinstance(k, str))
        for item in value.values():
            yield from jsonld_types(item)
    elif isinstance(value, list):
        for item in value:
            yield from jsonld_types(item)


def test_article_describes_itself_and_the_clinic_in_json_ld(pages: dict[str, Page]) -> None:
    assert ARTICLE in pages, f"no {ARTICLE} in the output"
    article_types = {t for block in pages[ARTICLE].jsonld for t in jsonld_types(json.loads(block))}
    assert article_types & {"MedicalWebPage", "Article"}, article_types
    site_types = {
        t
        for page in pages.values()
        for block in page.jsonld
        for t in jsonld_types(json.loads(block))
    }
    assert "MedicalClinic" in site_types, site_types


def test_not_found_page_is_kept_out_of_search_engines(pages: dict[str, Page]) -> None:
    # Netlify also serves the file itself at /404.html, with status 200.
    assert pages[NOT_FOUND].noindex, "404.html needs <meta name=robots content=noindex>"


def test_pages_carry_no_scripts_or_inline_styles(pages: dict[str, Page]) -> None:
    problems = []
    for page in pages.values():
        for element in page.elements:
            where = f"{page.path}: {element.describe()}"
            if element.tag == "script" and (
                element.attrs.get("type") != "application/ld+json" or "src" in element.attrs
            ):
                # The one script: the search page's own, a file of the site (CSP 'self').
                search = page.path == "search/index.html" and SEARCH_SCRIPT.fullmatch(
                    element.attrs.get("src", "")
                )
                if not (search and element.attrs.get("type") == "module"):
                    problems.append(f"{where}: a script (only the search page has one)")
            if element.tag == "style":
                problems.append(f"{where}: a <style> element (CSP style-src 'self')")
            if "style" in element.attrs:
                problems.append(f"{where}: a style= attribute (CSP style-src 'self')")
            handlers = [name for name in element.attrs if name.startswith("on")]
            if handlers:
                problems.append(f"{where}: event handler attributes {handlers}")
    assert not problems, "\n".join(problems)


def test_pages_load_nothing_the_content_security_policy_blocks(
    pages: dict[str, Page], netlify: dict[str, Any], base_url: str
) -> None:
    csp = all_paths_headers(netlify)["Content-Security-Policy"]
    directives = {
        parts[0]: parts[1:]
        for parts in (directive.split() for directive in csp.split(";"))
        if parts
    }
    image_sources = [s for s in directives["img-src"] if s.startswith("https://")]
    problems = []
    for page in pages.values():
        for element, reference in url_references(page):
            is_icon = element.tag == "link" and "icon" in element.attrs.get("rel", "")
            is_image = element.tag in ("img", "source") or is_icon
            is_loaded = element.tag in ("img", "source", "script", "iframe", "embed", "object")
            is_loaded = is_loaded or (
                element.tag == "link" and element.attrs.get("rel") in ("stylesheet", "icon")
            )
            if not is_loaded or (is_image and reference.startswith("data:")):
                continue
            absolute = urljoin(page.url, reference.strip())
            if absolute.startswith(base_url + "/"):
                continue
            if is_image and any(absolute.startswith(source + "/") for source in image_sources):
                continue
            problems.append(f"{page.path}: {element.describe()} loads {reference!r}")
    assert not problems, "\n".join(problems)


def test_stylesheet_has_a_fingerprinted_name(sample_site: Path, pages: dict[str, Page]) -> None:
    problems = []
    for page in pages.values():
        sheets = [e.attrs.get("href", "") for e in page.find("link", rel="stylesheet")]
        if not any(CSS_NAME.fullmatch(href) for href in sheets):
            problems.append(f"{page.path}: no site stylesheet")
        for href in sheets:
            extra = page.path == "search/index.html" and SEARCH_CSS.fullmatch(href)
            if not (CSS_NAME.fullmatch(href) or extra):
                problems.append(
                    f"{page.path}: stylesheet {href!r} is not /static/css/site.<hash>.css"
                )
            elif not (sample_site / href.lstrip("/")).is_file():
                problems.append(f"{page.path}: stylesheet {href!r} does not exist")
    assert not problems, "\n".join(problems)


def test_media_files_have_fingerprinted_names(sample_site: Path) -> None:
    media = sample_site / "media"
    wrong = [p.name for p in media.rglob("*") if p.is_file() and not MEDIA_NAME.fullmatch(p.name)]
    assert not wrong, f"not <name>.<hash10>.<ext>: {wrong}"


def parse_iso(text: str | None) -> date | None:
    """A W3C date or datetime, or None when it is neither."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip()).date()
    except ValueError:
        return None


def test_sitemap_lists_every_indexable_page(
    sample_site: Path, pages: dict[str, Page], base_url: str
) -> None:
    root = ET.parse(sample_site / "sitemap.xml").getroot()
    assert root.tag == f"{SITEMAP}urlset"
    problems = []
    locs = []
    for url in root.findall(f"{SITEMAP}url"):
        loc = (url.findtext(f"{SITEMAP}loc") or "").strip()
        locs.append(loc)
        lastmod = url.findtext(f"{SITEMAP}lastmod")
        if parse_iso(lastmod) is None:
            problems.append(f"{loc}: lastmod {lastmod!r} is not an ISO date")
        if not loc.startswith(base_url + "/"):
            problems.append(f"{loc}: not under {base_url}")
            continue
        _, problem = site_file(sample_site, urlsplit(loc).path)
        if problem:
            problems.append(f"{loc}: {problem}")
    duplicates = sorted({loc for loc in locs if locs.count(loc) > 1})
    if duplicates:
        problems.append(f"listed more than once: {duplicates}")
    indexable = {p.url for p in pages.values() if not p.noindex and p.path != NOT_FOUND}
    kept_out = {p.url for p in pages.values() if p.noindex or p.path == NOT_FOUND}
    if missing := sorted(indexable - set(locs)):
        problems.append(f"indexable pages missing: {missing}")
    if listed := sorted(kept_out & set(locs)):
        problems.append(f"noindex or 404 pages listed: {listed}")
    assert not problems, "\n".join(problems)


def feed_time(entry: ET.Element, name: str) -> datetime | None:
    text = entry.findtext(f"{ATOM}{name}")
    if text is None:
        return None
    moment = datetime.fromisoformat(text.strip())
    assert moment.tzinfo is not None, f"Atom {name} {text!r} needs a time zone (RFC 3339)"
    return moment


def test_feed_is_atom_with_the_newest_articles_first(
    sample_site: Path, pages: dict[str, Page], base_url: str
) -> None:
    root = ET.parse(sample_site / "feed.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{name}") or "").strip(), f"feed has no <{name}>"
    feed_time(root, "updated")
    self_links = [link.get("href") for link in root.findall(f"{ATOM}link[@rel='self']")]
    assert self_links == [f"{base_url}/feed.xml"]

    entries = root.findall(f"{ATOM}entry")
    listed = [
        p
        for p in pages.values()
        if re.fullmatch(r"blog/[^/]+/index\.html", p.path) and not p.noindex
    ]
    assert min(20, len(listed)) <= len(entries) <= 20
    hidden = {
        f"{base_url}/{p.path.removesuffix('index.html')}"
        for p in pages.values()
        if re.fullmatch(r"blog/[^/]+/index\.html", p.path) and p.noindex
    }
    assert hidden, "the sample content has a noindex article to leave out"
    in_feed = {entry.findtext(f"{ATOM}id") for entry in entries}
    assert not hidden & in_feed, "a page kept out of search is listed in the feed"

    problems = []
    times = []
    ids = []
    for entry in entries:
        title = (entry.findtext(f"{ATOM}title") or "").strip()
        ids.append(entry.findtext(f"{ATOM}id"))
        if not title or not ids[-1]:
            problems.append(f"entry {title!r}: needs a title and an id")
        updated = feed_time(entry, "updated")
        published = feed_time(entry, "published")
        if updated is None:
            problems.append(f"entry {title!r}: no <updated>")
        times.append(published or updated)
        hrefs = [
            link.get("href", "")
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        if len(hrefs) != 1 or not hrefs[0].startswith(base_url + "/blog/"):
            problems.append(f"entry {title!r}: alternate links {hrefs} (want one article URL)")
            continue
        _, problem = site_file(sample_site, urlsplit(hrefs[0]).path)
        if problem:
            problems.append(f"entry {title!r}: {hrefs[0]} {problem}")
    if len(set(ids)) != len(ids):
        problems.append(f"entry ids repeat: {ids}")
    dated = [t for t in times if t is not None]
    if dated != sorted(dated, reverse=True):
        problems.append(f"entries are not newest first: {[t.isoformat() for t in dated]}")
    assert not problems, "\n".join(problems)


def test_robots_txt_names_the_sitemap(sample_site: Path, base_url: str) -> None:
    lines = (sample_site / "robots.txt").read_text(encoding="utf-8").splitlines()
    sitemap_lines = [
        line.split(":", 1)[1].strip()
        for line in lines
        if ":" in line and line.split(":", 1)[0].strip().lower() == "sitemap"
    ]
    assert sitemap_lines == [f"{base_url}/sitemap.xml"], lines


@pytest.fixture(scope="module")
def netlify() -> dict[str, Any]:
    with (REPO_ROOT / "netlify.toml").open("rb") as file:
        return tomllib.load(file)


def all_paths_headers(config: dict[str, Any]) -> dict[str, str]:
    return next(h["values"] for h in config["headers"] if h["for"] == "/*")


def test_netlify_publishes_the_build_with_strict_headers(netlify: dict[str, Any]) -> None:
    assert netlify["build"]["publish"] == "public"
    assert "headwater build" in netlify["build"]["command"]
    assert "--preview" in netlify["context"]["deploy-preview"]["command"]
    headers = all_paths_headers(netlify)
    csp = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    # Scripts only from the site itself; WebAssembly (Pagefind's search engine) may compile,
    # but no inline code and no JavaScript eval.
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert not {"'unsafe-inline'", "'unsafe-eval'"} & {s for d in directives.values() for s in d}
    for directive in (
        "default-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "max-age=63072000" in headers["Strict-Transport-Security"]
    assert "Cache-Control" not in headers, "HTML must not be cached for long"
    for fingerprinted in ("/static/*", "/media/*"):
        values = next(h["values"] for h in netlify["headers"] if h["for"] == fingerprinted)
        assert values["Cache-Control"] == "public, max-age=31536000, immutable"


def test_the_article_page_with_its_stylesheets_weighs_at_most_30_kb(sample_site: Path) -> None:
    page = sample_site / "blog" / "what-causes-ptsd" / "index.html"
    html = page.read_text(encoding="utf-8")
    sheets = re.findall(r'<link rel="stylesheet" href="/([^"]+)"', html)
    assert sheets, "the article links no stylesheet"
    weight = len(html.encode()) + sum((sample_site / s).stat().st_size for s in sheets)
    assert weight <= 30 * 1024, f"the article and its CSS weigh {weight} bytes"


def test_stylesheets_are_published_minified_with_strings_and_selectors_intact() -> None:
    from headwater.assets import minify_css

    source = """/* a comment */
    .a :hover ,
    .b > .c { font-family: "Segoe  UI" , sans-serif ;
      content: "a ; b { }";
      margin : calc(100% - 2rem) ; }
    @media (min-width: 40rem) { .d { color: red; } }
    """
    assert minify_css(source) == (
        '.a :hover,.b > .c{font-family:"Segoe  UI",sans-serif;content:"a ; b { }";'
        "margin :calc(100% - 2rem)}@media (min-width:40rem){.d{color:red}}\n"
    )


VOCABULARY = REPO_ROOT / "tests" / "fixtures" / "schemaorg" / "vocabulary-12.0.json"


def jsonld_nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every node with a @type, nested ones included."""
    if isinstance(value, dict):
        if "@type" in value:
            yield value
        for item in value.values():
            yield from jsonld_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from jsonld_nodes(item)


def test_structured_data_uses_only_schema_org_types_and_their_properties(
    sample_site: Path, html_files: list[Path]
) -> None:
    vocabulary = json.loads(VOCABULARY.read_text(encoding="utf-8"))
    allowed: dict[str, list[str]] = vocabulary["types"]
    problems: set[str] = set()
    seen: set[str] = set()
    for file in html_files:
        found = re.search(
            r'<script type="application/ld\+json">(.*?)</script>', file.read_text(), re.S
        )
        assert found, f"{file.relative_to(sample_site)} has no JSON-LD"
        data = json.loads(found.group(1))
        assert data["@context"] == "https://schema.org"
        for node in jsonld_nodes(data["@graph"]):
            kind = node["@type"]
            seen.add(kind)
            if kind not in allowed:
                problems.add(f"type {kind} is not in the extract of schema.org's vocabulary")
                continue
            for name in node.keys() - {"@type", "@id"}:
                if name not in allowed[kind]:
                    problems.add(f"{kind} has no property {name!r} in schema.org")
            for specialty in node.get("medicalSpecialty", []):
                if specialty not in vocabulary["enumerations"]["MedicalSpecialty"]:
                    problems.add(f"{specialty!r} is not a schema.org MedicalSpecialty")
            if "sample" in str(node.get("honorificSuffix", "")):
                problems.add(f"honorificSuffix {node['honorificSuffix']!r} carries a remark")
    assert not problems, "\n".join(sorted(problems))
    # What the pages must say: the clinic with its address, the website, articles as both.
    assert {"MedicalClinic", "PostalAddress", "WebSite", "MedicalWebPage", "BlogPosting"} <= seen
