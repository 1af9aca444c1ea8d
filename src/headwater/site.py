"""Plan the site: every output page, what it shows, and the checks that need the whole map."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headwater.history import History
from headwater.links import path_of
from headwater.model import Asset, Content, Entry, Problem
from headwater.redirects import GONE_PAGE, REDIRECT_TYPE, Rule, plan_redirects

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


@dataclass(frozen=True)
class Recipe:
    """How one route is made: its kind, the entry whose page it is (if any), what its template
    gets, and plain parameters. A build that changed only what some entries say (not which
    pages exist or what they list) makes the routes that read them again from their recipes
    (see siteindex.py), through the same code as a full plan."""

    kind: str
    """`entry` (an entry's page, or a later page of a topic), `blog`, `notfound`, `gone`,
    `feed`, `robots` or `sitemap`."""
    own: Entry | None
    context: dict[str, Any]
    params: tuple[Any, ...] = ()


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
    recipe: Recipe | None = None

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

    settings: Entry
    base_url: str
    routes: list[Route]
    nav: list[NavItem]
    updated: dt.date
    """The newest date in the content: what "last updated" means for the whole site."""
    preview: bool = False
    entries: Mapping[str, Entry] = field(default_factory=dict)
    """Every entry by id (bodies link to and embed entries by id)."""
    assets: Mapping[str, Asset] = field(default_factory=dict)
    history: History = field(default_factory=History)
    """Every URL each entry's page has had, this build's included."""
    redirects: list[Rule] = field(default_factory=list)

    @property
    def year(self) -> int:
        return self.updated.year

    @property
    def name(self) -> str:
        return str(self.settings.siteName)

    @property
    def tagline(self) -> str:
        return str(self.settings.tagline or "")

    lang = "en"

    def absolute(self, url: str) -> str:
        return self.base_url + url if url.startswith("/") else url

    def canonical(self, route: Route) -> str:
        return self.absolute(route.url)


SEARCH_PAGE = "/search/"
"""The search page (see search.py); the header's search form submits to it."""

URL_PREFIXES = {"article": "/blog/", "topic": "/topics/", "author": "/authors/", "page": "/"}
"""Where each content type's pages live: `/blog/<slug>/` and so on."""


def entry_url(content_type: str, slug: str | None, is_home: bool) -> str | None:
    """An entry's page on the site; None for types without pages (site settings)."""
    if is_home:
        return "/"
    prefix = URL_PREFIXES.get(content_type)
    return f"{prefix}{slug}/" if prefix is not None and slug else None


def plan_site(
    content: Content, base_url: str, *, preview: bool = False, history: History | None = None
) -> tuple[Site, list[Problem]]:
    """Lay out every page; report duplicate URLs, navigation that leads nowhere and redirects
    that clash. `history` is the site's URL history before this build (see history.py)."""
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
    recipes = [
        Recipe(
            "entry",
            home,
            {"entry": home, "articles": articles[:HOME_ARTICLES]},
            ("home.html", "website", None, None),
        )
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
    recipes += [
        Recipe(
            "entry",
            a,
            {"article": a, "related": _related(a, by_topic)},
            ("article.html", "article", a.lastReviewed or a.publishDate, None),
        )
        for a in articles
    ]
    for chunk, pagination in _paginate(articles, "/blog/"):
        recipes.append(
            Recipe("blog", None, {"articles": chunk, "pagination": pagination}, (newest,))
        )
    for topic in topics:
        for chunk, pagination in _paginate(by_topic[id(topic)], str(topic.url)):
            context = {"topic": topic, "articles": chunk, "pagination": pagination}
            page = pagination if pagination.number > 1 else None
            recipes.append(
                Recipe("entry", topic, context, ("topic.html", "website", _newest(chunk), page))
            )
    for author in authors:
        authored, reviewed = by_author[id(author)], by_reviewer[id(author)]
        context = {
            "author": author,
            "articles": authored[:AUTHOR_LIST],
            "reviewed": reviewed[:AUTHOR_LIST],
            "articles_total": len(authored),
            "reviewed_total": len(reviewed),
        }
        lastmod = _newest(authored[:AUTHOR_LIST] + reviewed[:AUTHOR_LIST])
        recipes.append(Recipe("entry", author, context, ("author.html", "profile", lastmod, None)))
    recipes += [
        Recipe("entry", p, {"entry": p}, ("page.html", "website", None, None)) for p in pages
    ]
    listed = [a for a in articles if not a.fields.get("noindex")]
    recipes += [
        Recipe("notfound", None, {}),
        Recipe("gone", None, {"topics": topics}),
        Recipe("search", None, {"topics": topics}),
        # The feed is for readers and aggregators: a page kept out of search is kept out of it.
        Recipe("feed", None, {"articles": listed[:FEED_SIZE], "updated": newest}),
        Recipe("robots", None, {}),
    ]
    routes = [make_route(recipe, settings) for recipe in recipes]
    pages_now = {e.id: (e.content_type, e.url) for e in content.entries if e.url is not None}
    history = (history or History()).advance(pages_now)
    site = Site(
        settings=settings,
        base_url=base_url,
        routes=routes,
        nav=[_nav_item(item) for item in settings.navigation],
        updated=newest,
        preview=preview,
        entries={e.id: e for e in content.entries},
        assets=content.assets,
        history=history,
    )
    routes.append(make_route(Recipe("sitemap", None, {"urls": _sitemap(site)}), settings))
    problems = _check_routes(site)
    owners = {r.url: r.origin for r in routes}
    site.redirects, found = plan_redirects(by_type[REDIRECT_TYPE], owners, history)
    problems += found
    moved = {r.source: r.target for r in site.redirects if r.status in (301, 302)}
    for record in content.records.values():
        problems += check_links(record, owners.__contains__, moved)
    return site, problems


def check_links(
    record: Any, exists: Callable[[str], bool], moved: Mapping[str, str]
) -> list[Problem]:
    """A checked entry's body links that lead to no page (a link to an old address of a page
    is fine: it is rewritten to the page's address now when the body is rendered)."""
    problems = []
    for target, name, line in record.links:
        path = path_of(target)
        if exists(path) or path in moved or exists(path + "/") or (path + "/") in moved:
            continue
        problems.append(
            record.problem(
                name, "link", f"links to {target}, which no page of the site has", target, line
            )
        )
    return problems


def make_route(recipe: Recipe, settings: Entry) -> Route:
    """The route a recipe makes (what a template gets, its title, description, URL)."""
    context = recipe.context
    name = settings.siteName
    if recipe.kind == "entry":
        assert recipe.own is not None
        template, og_type, lastmod, page = recipe.params
        route = _entry_route(
            recipe.own, template, settings, context=context, og_type=og_type, lastmod=lastmod
        )
        if page is not None:  # a later page of a long list: its own URL and title
            suffix = _page_suffix(page)
            label = recipe.own.label
            route.url = page.url(page.number)
            route.title = f"{label}{suffix} | {name}"
            route.heading = f"{label}{suffix}"
    elif recipe.kind == "blog":
        pagination, chunk = context["pagination"], context["articles"]
        suffix = _page_suffix(pagination)
        route = Route(
            url=pagination.url(pagination.number),
            template="blog.html",
            title=f"Blog{suffix} | {name}",
            heading=f"Blog{suffix}",
            description=f"Articles from {name}{suffix}.",
            context=context,
            lastmod=_newest(chunk) or recipe.params[0],
        )
    elif recipe.kind == "notfound":
        route = Route(
            url="/404.html",
            template="404.html",
            title=f"Page not found | {name}",
            heading="Page not found",
            description=str(settings.description),
            noindex=True,
        )
    elif recipe.kind == "gone":
        route = Route(
            url=GONE_PAGE,
            template="gone.html",
            title=f"This page has been removed | {name}",
            heading="This page has been removed",
            description=str(settings.description),
            context=context,
            noindex=True,
        )
    elif recipe.kind == "search":
        route = Route(
            url=SEARCH_PAGE,
            template="search.html",
            title=f"Search | {name}",
            heading="Search",
            description=f"Search the articles and pages of {name}.",
            context=context,
            noindex=True,
        )
    else:
        url = {"feed": "/feed.xml", "robots": "/robots.txt", "sitemap": "/sitemap.xml"}
        route = Route(
            url=url[recipe.kind],
            template=url[recipe.kind].lstrip("/"),
            title="",
            heading="",
            description="",
            context=context,
        )
    route.recipe = recipe
    return route


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
    fields = entry.fields
    title = fields.get("seoTitle") or entry.label
    description = fields.get("seoDescription") or fields.get("summary") or settings.description
    return Route(
        url=str(entry.url),
        template=template,
        title=str(settings.siteName) if entry.url == "/" else f"{title} | {settings.siteName}",
        heading=entry.label,
        description=str(description),
        context=context,
        noindex=bool(fields.get("noindex")),
        og_type=og_type,
        image=fields.get("heroImage") or fields.get("photo"),
        lastmod=lastmod,
        origin=entry.origin,
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


def page_jsonld(site: Site, route: Route, logo: str | None = None) -> dict[str, Any]:
    """Schema.org JSON-LD for one page: the clinic, the website, and the page (an article is a
    MedicalWebPage whose main entity is a BlogPosting, for article rich results)."""
    settings = site.settings
    home = site.base_url + "/"
    clinic: dict[str, Any] = {
        "@type": "MedicalClinic",
        "@id": home + "#clinic",
        "name": site.name,
        "url": home,
        "description": str(settings.description),
        "email": str(settings.contactEmail),
    }
    if settings.contactPhone:
        clinic["telephone"] = str(settings.contactPhone)
    if settings.address:
        lines = [line.strip() for line in str(settings.address).splitlines() if line.strip()]
        clinic["address"] = {"@type": "PostalAddress", "streetAddress": ", ".join(lines)}
    if logo:
        clinic["logo"] = site.absolute(logo)
    # A field newer than the project's model (not pushed yet) is simply absent.
    specialties = settings.fields.get("medicalSpecialty")
    if specialties:
        clinic["medicalSpecialty"] = list(specialties)
    website = {
        "@type": "WebSite",
        "@id": home + "#website",
        "url": home,
        "name": site.name,
        "inLanguage": site.lang,
        "publisher": {"@id": clinic["@id"]},
    }
    graph: list[dict[str, Any]] = [clinic, website]
    canonical = site.canonical(route)
    page: dict[str, Any] = {
        "@type": "WebPage",
        "@id": canonical,
        "url": canonical,
        "name": route.heading,
        "description": route.description,
        "inLanguage": site.lang,
        "isPartOf": {"@id": website["@id"]},
    }
    article = route.context.get("article")
    if isinstance(article, Entry):
        posting: dict[str, Any] = {
            "@type": "BlogPosting",
            "@id": canonical + "#article",
            "mainEntityOfPage": {"@id": canonical},
            "headline": article.title,
            "description": article.summary,
            "datePublished": article.publishDate.isoformat(),
            "dateModified": (article.lastReviewed or article.publishDate).isoformat(),
            "inLanguage": site.lang,
            "author": _person(site, article.author),
            "publisher": {"@id": clinic["@id"]},
            "isPartOf": {"@id": website["@id"]},
        }
        if article.heroImage:
            posting["image"] = site.absolute(article.heroImage.url)
        elif route.image is not None:
            posting["image"] = site.absolute(route.image.url)
        page.update({"@type": "MedicalWebPage", "name": article.title})
        page["mainEntity"] = {"@id": posting["@id"]}
        if article.medicalReviewer:
            page["reviewedBy"] = _person(site, article.medicalReviewer)
        if article.lastReviewed:
            page["lastReviewed"] = article.lastReviewed.isoformat()
        if article.topics:
            page["about"] = [{"@type": "Thing", "name": t.name} for t in article.topics]
        graph += [page, posting]
    else:
        graph.append(page)
    return {"@context": "https://schema.org", "@graph": graph}


_NOTE = re.compile(r"\s*\([^()]*\)")


def _person(site: Site, author: Entry) -> dict[str, Any]:
    person: dict[str, Any] = {
        "@type": "Person",
        "name": author.name,
        "url": site.absolute(str(author.url)),
    }
    if author.credentials:
        # Credentials as a suffix to the name ("MD, Psychiatry"), without remarks in brackets.
        suffix = _NOTE.sub("", str(author.credentials)).strip(" ,")
        if suffix:
            person["honorificSuffix"] = suffix
    if author.role:
        person["jobTitle"] = author.role
    return person


def jsonld_text(data: dict[str, Any]) -> str:
    """JSON for a <script> element: '<', '>' and '&' escaped so no content can close it."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
