"""Plan the site: every output page, what it shows, and the checks that need the whole map."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from headwater.model import Asset, Content, Entry, Problem

_SAFE_URL = re.compile(r"^/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*(?:[A-Za-z0-9_-][A-Za-z0-9._-]*)?$")
PAGE_SIZE = 10
WINDOW = 2
"""Pages listed either side of the current one in the blog's page links."""
FEED_SIZE = 20
HOME_ARTICLES = 3
AUTHOR_LIST = 10
"""An author's page shows their newest articles, written and reviewed, this many of each."""
RELATED_MAX = 3


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    external: bool


@dataclass(frozen=True)
class Pagination:
    """Where one page of the blog index sits among the others."""

    number: int
    total: int
    base: str = "/blog/"

    def url(self, number: int) -> str:
        return self.base if number == 1 else f"{self.base}page/{number}/"

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(self.url(n) for n in range(1, self.total + 1))

    @property
    def prev_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.total else None

    @property
    def window(self) -> tuple[PageLink | None, ...]:
        """The first, the last and the nearest pages; None where pages are left out."""
        near = range(max(1, self.number - WINDOW), min(self.total, self.number + WINDOW) + 1)
        shown = sorted({1, self.total, *near})
        links: list[PageLink | None] = []
        for previous, number in zip([0, *shown], shown, strict=False):
            if number - previous > 1:
                links.append(None)
            links.append(PageLink(number, self.url(number), number == self.number))
        return tuple(links)


@dataclass(frozen=True)
class PageLink:
    number: int
    url: str
    current: bool


@dataclass(frozen=True)
class SitemapUrl:
    loc: str
    lastmod: str


@dataclass(slots=True)
class Route:
    """One output file: its URL, the template that renders it and what that template gets."""

    url: str
    template: str
    title: str
    heading: str
    description: str
    context: dict[str, Any] = field(default_factory=dict)
    noindex: bool = False
    og_type: str = "website"
    image: Asset | None = None
    lastmod: dt.date | None = None
    origin: str = "(site)"

    @property
    def kind(self) -> str:
        return self.template.rsplit(".", 1)[0]

    @property
    def is_html(self) -> bool:
        return self.template.endswith(".html")


PLAIN_TYPES: tuple[type, ...] = (NavItem, Pagination, PageLink, SitemapUrl)
"""The planning values whose repr shows everything they hold, and that hold no entries."""


@dataclass
class Site:
    """Every route of the site, planned before any is rendered."""

    content: Content
    base_url: str
    routes: list[Route]
    nav: list[NavItem]
    updated: dt.date
    """The newest date in the content: what "last updated" means for the whole site."""
    preview: bool = False

    @property
    def year(self) -> int:
        return self.updated.year

    @property
    def name(self) -> str:
        return str(self.content.settings.siteName)

    @property
    def tagline(self) -> str:
        return str(self.content.settings.tagline or "")

    @property
    def settings(self) -> Entry:
        return self.content.settings

    lang = "en"

    def absolute(self, url: str) -> str:
        return self.base_url + url if url.startswith("/") else url

    def canonical(self, route: Route) -> str:
        return self.absolute(route.url)


URL_PREFIXES = {"article": "/blog/", "topic": "/topics/", "author": "/authors/", "page": "/"}
"""Where each content type's pages live: `/blog/<slug>/` and so on."""


def entry_url(content_type: str, slug: str | None, is_home: bool) -> str | None:
    """An entry's page on the site; None for types without pages (site settings)."""
    if is_home:
        return "/"
    prefix = URL_PREFIXES.get(content_type)
    return f"{prefix}{slug}/" if prefix is not None and slug else None


def plan_site(
    content: Content, base_url: str, *, preview: bool = False
) -> tuple[Site, list[Problem]]:
    """Lay out every page; report duplicate URLs and navigation that leads nowhere."""
    settings = content.settings
    by_type: dict[str, list[Entry]] = defaultdict(list)
    for entry in content.entries:
        by_type[entry.content_type].append(entry)
    articles = sorted(by_type["article"], key=_newest_first, reverse=True)
    topics = sorted(by_type["topic"], key=_by_slug)
    authors = sorted(by_type["author"], key=_by_slug)
    home: Entry = settings.homePage
    pages = sorted((p for p in by_type["page"] if p is not home), key=_by_slug)

    dates = [d for a in articles for d in (a.publishDate, a.lastReviewed) if d]
    newest = max(dates, default=dt.date(2000, 1, 1))
    routes: list[Route] = [
        _entry_route(
            home,
            "home.html",
            settings,
            context={"entry": home, "articles": articles[:HOME_ARTICLES]},
        ),
    ]
    by_topic: dict[int, list[Entry]] = defaultdict(list)
    by_author: dict[int, list[Entry]] = defaultdict(list)
    by_reviewer: dict[int, list[Entry]] = defaultdict(list)
    for article in articles:
        for topic in article.topics:
            by_topic[id(topic)].append(article)
        by_author[id(article.author)].append(article)
        if article.medicalReviewer:
            by_reviewer[id(article.medicalReviewer)].append(article)
    routes += [_article_route(a, by_topic, settings) for a in articles]
    routes += _blog_routes(articles, settings, newest)
    for topic in topics:
        routes += _topic_routes(topic, by_topic[id(topic)], settings)
    for author in authors:
        authored, reviewed = by_author[id(author)], by_reviewer[id(author)]
        routes.append(
            _entry_route(
                author,
                "author.html",
                settings,
                og_type="profile",
                context={
                    "author": author,
                    "articles": authored[:AUTHOR_LIST],
                    "reviewed": reviewed[:AUTHOR_LIST],
                    "articles_total": len(authored),
                    "reviewed_total": len(reviewed),
                },
                lastmod=_newest(authored[:AUTHOR_LIST] + reviewed[:AUTHOR_LIST]),
            )
        )
    routes += [_entry_route(p, "page.html", settings, context={"entry": p}) for p in pages]
    routes.append(
        Route(
            url="/404.html",
            template="404.html",
            title=f"Page not found | {settings.siteName}",
            heading="Page not found",
            description=str(settings.description),
            noindex=True,
        )
    )
    routes.append(
        Route(
            url="/feed.xml",
            template="feed.xml",
            title="",
            heading="",
            description="",
            context={"articles": articles[:FEED_SIZE], "updated": newest},
        )
    )
    routes.append(
        Route(url="/robots.txt", template="robots.txt", title="", heading="", description="")
    )

    nav = [_nav_item(item) for item in settings.navigation]
    site = Site(
        content=content,
        base_url=base_url,
        routes=routes,
        nav=nav,
        updated=newest,
        preview=preview,
    )
    routes.append(
        Route(
            url="/sitemap.xml",
            template="sitemap.xml",
            title="",
            heading="",
            description="",
            context={"urls": _sitemap(site)},
        )
    )
    return site, _check_routes(site)


def _newest_first(article: Entry) -> tuple[dt.date, str]:
    return (article.publishDate, article.slug)


def _by_slug(entry: Entry) -> str:
    return str(entry.slug)


def _entry_route(
    entry: Entry,
    template: str,
    settings: Entry,
    *,
    context: dict[str, Any],
    og_type: str = "website",
    lastmod: dt.date | None = None,
) -> Route:
    title = entry.fields.get("seoTitle") or entry.label
    is_home = entry.url == "/"
    description = (
        entry.fields.get("seoDescription") or entry.fields.get("summary") or settings.description
    )
    return Route(
        url=str(entry.url),
        template=template,
        title=str(settings.siteName) if is_home else f"{title} | {settings.siteName}",
        heading=entry.label,
        description=str(description),
        context=context,
        noindex=bool(entry.fields.get("noindex")),
        og_type=og_type,
        image=entry.fields.get("heroImage") or entry.fields.get("photo"),
        lastmod=lastmod,
        origin=entry.origin,
    )


def _article_route(article: Entry, by_topic: dict[int, list[Entry]], settings: Entry) -> Route:
    return _entry_route(
        article,
        "article.html",
        settings,
        og_type="article",
        context={"article": article, "related": _related(article, by_topic)},
        lastmod=article.lastReviewed or article.publishDate,
    )


def _related(article: Entry, by_topic: dict[int, list[Entry]]) -> list[Entry]:
    """The editor's choice, else the newest articles sharing a topic."""
    if article.relatedArticles:
        return list(article.relatedArticles)[:RELATED_MAX]
    # Each topic's list is newest first, so the newest few of each hold the newest overall.
    candidates: dict[int, Entry] = {}
    for topic in article.topics:
        others = (a for a in by_topic[id(topic)] if a is not article)
        for other in itertools.islice(others, RELATED_MAX):
            candidates[id(other)] = other
    newest = sorted(candidates.values(), key=lambda a: (a.publishDate, a.slug), reverse=True)
    return newest[:RELATED_MAX]


def _blog_routes(articles: list[Entry], settings: Entry, newest: dt.date) -> list[Route]:
    routes = []
    for chunk, pagination in _paginate(articles, "/blog/"):
        suffix = _page_suffix(pagination)
        routes.append(
            Route(
                url=pagination.url(pagination.number),
                template="blog.html",
                title=f"Blog{suffix} | {settings.siteName}",
                heading=f"Blog{suffix}",
                description=f"Articles from {settings.siteName}{suffix}.",
                context={"articles": chunk, "pagination": pagination},
                lastmod=_newest(chunk) or newest,
            )
        )
    return routes


def _topic_routes(topic: Entry, listed: list[Entry], settings: Entry) -> list[Route]:
    """A topic's page, and further pages when it has more articles than one page shows."""
    routes = []
    for chunk, pagination in _paginate(listed, str(topic.url)):
        route = _entry_route(
            topic,
            "topic.html",
            settings,
            context={"topic": topic, "articles": chunk, "pagination": pagination},
            lastmod=_newest(chunk),
        )
        if pagination.number > 1:
            suffix = _page_suffix(pagination)
            route = dataclasses.replace(
                route,
                url=pagination.url(pagination.number),
                title=f"{topic.label}{suffix} | {settings.siteName}",
                heading=f"{topic.label}{suffix}",
            )
        routes.append(route)
    return routes


def _paginate(articles: list[Entry], base: str) -> list[tuple[list[Entry], Pagination]]:
    chunks = [articles[i : i + PAGE_SIZE] for i in range(0, len(articles), PAGE_SIZE)] or [[]]
    return [(chunk, Pagination(n, len(chunks), base)) for n, chunk in enumerate(chunks, start=1)]


def _page_suffix(pagination: Pagination) -> str:
    if pagination.number == 1:
        return ""
    return f" (page {pagination.number} of {pagination.total})"


def _newest(articles: list[Entry]) -> dt.date | None:
    return max((a.lastReviewed or a.publishDate for a in articles), default=None)


def _nav_item(item: str) -> NavItem:
    label, _, url = item.partition("|")
    return NavItem(label=label.strip(), url=url.strip(), external=url.strip().startswith("http"))


def _sitemap(site: Site) -> list[SitemapUrl]:
    urls = []
    for route in site.routes:
        if route.is_html and not route.noindex:
            lastmod = route.lastmod or site.updated
            urls.append(SitemapUrl(loc=site.canonical(route), lastmod=lastmod.isoformat()))
    return urls


def _check_routes(site: Site) -> list[Problem]:
    problems = []
    owners: dict[str, Route] = {}
    for route in site.routes:
        if not _SAFE_URL.match(route.url):
            problems.append(
                Problem(
                    route.origin,
                    "slug",
                    "safePath",
                    f"the URL {route.url!r} is not a safe path inside the site",
                    route.url,
                )
            )
            continue
        other = owners.get(route.url)
        if other is not None:
            for a, b in ((route, other), (other, route)):
                problems.append(
                    Problem(
                        a.origin,
                        "slug",
                        "uniqueUrl",
                        f"the URL {route.url} is also produced by {b.origin}",
                        route.url,
                    )
                )
        owners[route.url] = route
    for item in site.nav:
        if not item.external and item.url not in owners:
            problems.append(
                Problem(
                    site.settings.origin,
                    "navigation",
                    "link",
                    f"the menu item {item.label!r} leads to {item.url}, which no page has",
                    item.url,
                )
            )
    return problems


def output_path(url: str) -> str:
    """The file a pretty URL is served from: '/blog/x/' -> 'blog/x/index.html'."""
    path = url.lstrip("/")
    return path + "index.html" if path.endswith("/") or not path else path


def page_jsonld(site: Site, route: Route) -> dict[str, Any]:
    settings = site.settings
    clinic: dict[str, Any] = {
        "@type": "MedicalClinic",
        "@id": site.base_url + "/#clinic",
        "name": site.name,
        "url": site.base_url + "/",
        "description": str(settings.description),
        "email": str(settings.contactEmail),
    }
    if settings.contactPhone:
        clinic["telephone"] = str(settings.contactPhone)
    graph: list[dict[str, Any]] = [clinic]
    article = route.context.get("article")
    if isinstance(article, Entry):
        node: dict[str, Any] = {
            "@type": "MedicalWebPage",
            "@id": site.canonical(route),
            "url": site.canonical(route),
            "name": article.title,
            "headline": article.title,
            "description": article.summary,
            "datePublished": article.publishDate.isoformat(),
            "dateModified": (article.lastReviewed or article.publishDate).isoformat(),
            "inLanguage": site.lang,
            "publisher": {"@id": clinic["@id"]},
            "author": _person(site, article.author),
        }
        if article.medicalReviewer:
            node["reviewedBy"] = _person(site, article.medicalReviewer)
        if article.lastReviewed:
            node["lastReviewed"] = article.lastReviewed.isoformat()
        if article.topics:
            node["about"] = [{"@type": "Thing", "name": t.name} for t in article.topics]
        if article.heroImage:
            node["image"] = site.absolute(article.heroImage.url)
        graph.append(node)
    else:
        graph.append(
            {
                "@type": "WebPage",
                "@id": site.canonical(route),
                "url": site.canonical(route),
                "name": route.heading,
                "description": route.description,
                "inLanguage": site.lang,
                "isPartOf": {"@id": clinic["@id"]},
            }
        )
    return {"@context": "https://schema.org", "@graph": graph}


def _person(site: Site, author: Entry) -> dict[str, Any]:
    person: dict[str, Any] = {
        "@type": "Person",
        "name": author.name,
        "url": site.absolute(str(author.url)),
    }
    if author.credentials:
        person["honorificSuffix"] = author.credentials
    if author.role:
        person["jobTitle"] = author.role
    return person


def jsonld_text(data: dict[str, Any]) -> str:
    """JSON for a <script> element: '<', '>' and '&' escaped so no content can close it."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
