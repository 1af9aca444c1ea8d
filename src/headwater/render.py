"""Render the planned site's routes to bytes with the Jinja2 theme in `templates/`."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jinja2
from markupsafe import Markup

from headwater.cards import IMAGES_API_HOSTS, share_image
from headwater.contentful.richtext import render_richtext, richtext_words
from headwater.errors import ConfigError
from headwater.links import finish_body
from headwater.markup import Body, Heading, MarkdownRenderer, reading_minutes
from headwater.model import Asset, Entry, LongText
from headwater.parallel import run_sharded
from headwater.redirects import link_resolver
from headwater.site import Route, Site, jsonld_text, output_path, page_jsonld

if TYPE_CHECKING:
    from headwater.manifest import Fingerprinter
    from headwater.writer import Publisher

MONTHS = ("January", "February", "March", "April", "May", "June") + (
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Page:
    """What every template knows about the page it renders."""

    url: str
    canonical: str
    title: str
    heading: str
    description: str
    noindex: bool
    og_type: str
    image: Asset | None
    jsonld: Markup
    kind: str


class TextStore(Protocol):
    """Where long texts are read back, and rendered bodies kept (see cache.ContentCache)."""

    def text(self, text: LongText) -> Any: ...

    def html(self, key: str) -> Any | None: ...

    def store_html(self, items: Iterable[tuple[str, str, Any]]) -> None: ...


class NoTexts:
    """A TextStore for content whose long texts are all in memory."""

    def text(self, text: LongText) -> Any:
        raise KeyError(text.digest)

    def html(self, key: str) -> Any | None:
        return None

    def store_html(self, items: Iterable[tuple[str, str, Any]]) -> None:
        return None


def make_environment(
    templates_dir: Path,
    site: Site,
    static_urls: Mapping[str, str],
    cache_dir: Path | None = None,
    *,
    texts: TextStore | None = None,
    body_key: Callable[[Entry, LongText], str] | None = None,
) -> jinja2.Environment:
    """The theme's Jinja2 environment; compiled templates are kept in cache_dir when given.

    `texts` reads bodies kept out of memory and keeps their rendered HTML under
    `body_key(entry, text)`, which must cover everything the HTML is made from.
    """
    cache = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache = jinja2.FileSystemBytecodeCache(str(cache_dir))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        bytecode_cache=cache,
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    markdown = MarkdownRenderer(site_host=_host(site.base_url))

    def asset_url(name: str) -> str:
        try:
            return static_urls[name]
        except KeyError:
            raise jinja2.TemplateRuntimeError(f"static/{name} does not exist") from None

    richtext = _RichText(env, site, markdown)
    resolve = link_resolver(site.redirects)
    bodies = _Bodies(markdown, richtext, texts or NoTexts(), body_key, resolve)
    env.globals[_BODIES] = bodies

    def body(entry: Entry) -> _LazyBody:
        return _LazyBody(entry, bodies)

    def render_markdown(text: str | None) -> Markup:
        return Markup(markdown.render(text).html) if text else Markup("")

    def render_inline(text: str | None) -> Markup:
        return Markup(markdown.render_inline(text)) if text else Markup("")

    fragments: dict[tuple[Any, ...], Markup] = {}

    def memo(macro: Any, *args: Any) -> Markup:
        """A macro's output, rendered once per build for the same arguments (entries by id).

        Only for macros that show nothing but their arguments, like an article's card.
        """
        key = (macro.name, *(("entry", a.id) if isinstance(a, Entry) else a for a in args))
        found = fragments.get(key)
        if found is None:
            found = fragments[key] = Markup(macro(*args))
        return found

    env.globals.update(
        site_logo=static_urls.get("favicon.svg"),
        image_widths=image_widths,
        image_url=image_url,
        srcset=srcset,
        memo=memo,
        asset_url=asset_url,
        body=body,
        markdown=render_markdown,
        inline_markdown=render_inline,
        site=site,
    )
    env.filters.update(date=format_date, isodate=iso_date, absolute=site.absolute)
    return env


_BODIES = "_headwater_bodies"


def flush_bodies(env: jinja2.Environment) -> None:
    """Keep the bodies this process rendered in the text store, for the next build."""
    bodies = env.globals.get(_BODIES)
    if isinstance(bodies, _Bodies):
        bodies.flush()


class _Bodies:
    """Entries' bodies rendered once per build, and once per content across builds: a body
    whose HTML the text store has under the same key is not parsed or sanitised again."""

    def __init__(
        self,
        markdown: MarkdownRenderer,
        richtext: _RichText,
        texts: TextStore,
        body_key: Callable[[Entry, LongText], str] | None,
        resolve: Callable[[str], str] = str,
    ) -> None:
        self.markdown = markdown
        self.richtext = richtext
        self.texts = texts
        self.body_key = body_key
        self.resolve = resolve
        self.done: dict[str, Body] = {}
        self.new: list[tuple[str, str, Any]] = []

    def words(self, entry: Entry) -> int:
        value = entry.fields.get("body")
        if isinstance(value, LongText):
            return value.words
        if isinstance(value, dict):
            return richtext_words(value)
        return self.markdown.words(value) if isinstance(value, str) else 0

    def render(self, entry: Entry) -> Body:
        value = entry.fields.get("body")
        if not isinstance(value, LongText):
            if isinstance(value, dict):
                return self.richtext.body(value)
            return self.markdown.render(value if isinstance(value, str) else "")
        key = self.body_key(entry, value) if self.body_key else f"{entry.id}:{value.digest}"
        found = self.done.get(key)
        if found is None:
            found = self.texts.html(key)
            if found is None:
                found = self.finish(entry, self.render_text(self.texts.text(value)))
                self.new.append((key, value.digest, found))
            self.done[key] = found
        return found

    def finish(self, entry: Entry, body: Body) -> Body:
        """Local images from their published files; links to moved pages to their address."""
        images = {
            (ref.id.split("#", 1)[0], ref.alt): ref
            for ref in entry.refs
            if isinstance(ref, Asset) and ref.is_local
        }
        html = finish_body(body.html, images, self.resolve)
        return body if html == body.html else Body(html=html, toc=body.toc, words=body.words)

    def render_text(self, value: Any) -> Body:
        if isinstance(value, dict):
            return self.richtext.body(value)
        return self.markdown.render(value if isinstance(value, str) else "")

    def flush(self) -> None:
        """Keep what this process rendered for the next build."""
        new, self.new = self.new, []
        self.texts.store_html(new)


class _LazyBody:
    """What `body(entry)` gives templates: the HTML is rendered only when a template asks, and
    a listing's reading time never renders the body at all."""

    def __init__(self, entry: Entry, bodies: _Bodies) -> None:
        self._entry = entry
        self._bodies = bodies

    @property
    def html(self) -> Markup:
        return Markup(self._bodies.render(self._entry).html)

    @property
    def toc(self) -> tuple[Heading, ...]:
        return self._bodies.render(self._entry).toc

    @property
    def words(self) -> int:
        return self._bodies.words(self._entry)

    @property
    def reading_minutes(self) -> int:
        return reading_minutes(self.words)


class _RichText:
    """Renders Contentful RichText bodies: links resolve to the site's pages, embedded entries
    render through `partials/embedded/<content type>.html`, embedded assets as figures."""

    def __init__(self, env: jinja2.Environment, site: Site, markdown: MarkdownRenderer) -> None:
        self.env = env
        self.markdown = markdown
        self.entries = site.entries
        self.assets = site.assets

    def body(self, document: dict[str, Any]) -> Body:
        # Embedded entries and assets are our own templates' HTML (a <picture> with srcset,
        # which the sanitiser would strip): they go in after the document is sanitised, through
        # placeholder elements. An editor cannot forge one: the RichText writer escapes every
        # character of text, so the only tags in its output are the writer's own.
        embeds: list[str] = []

        def embed(kind: str, target: Mapping[str, Any]) -> str:
            embeds.append(self.embed(kind, target))
            return f'<{EMBED_TAG} data-n="{len(embeds) - 1}"></{EMBED_TAG}>'

        raw = render_richtext(
            document, link_entry=self.link_entry, link_asset=self.link_asset, embed=embed
        )
        body = self.markdown.render_html(
            raw, richtext_words(document), keep=EMBED_TAG, trusted=True
        )
        if not embeds:
            return body
        html = _EMBED.sub(lambda m: embeds[int(m.group(1))], body.html)
        return Body(html=html, toc=body.toc, words=body.words)

    def _target_id(self, target: Mapping[str, Any]) -> str:
        return str(target.get("sys", {}).get("id", ""))

    def link_entry(self, target: Mapping[str, Any]) -> str | None:
        entry = self.entries.get(self._target_id(target))
        return entry.url if entry is not None else None

    def link_asset(self, target: Mapping[str, Any]) -> str | None:
        asset = self.assets.get(self._target_id(target))
        return asset.url if asset is not None else None

    def embed(self, kind: str, target: Mapping[str, Any]) -> str:
        if kind == "embedded-asset-block":
            asset = self.assets.get(self._target_id(target))
            if asset is None:
                return ""
            return str(self.env.get_template("partials/embedded/asset.html").render(asset=asset))
        entry = self.entries.get(self._target_id(target))
        if entry is None:
            return ""
        names = [f"partials/embedded/{entry.content_type}.html", "partials/embedded/entry.html"]
        template = self.env.select_template(names)
        return str(template.render(entry=entry, inline=kind.endswith("inline")))


EMBED_TAG = "headwater-embed"
_EMBED = re.compile(f'(?:<p>)?<{EMBED_TAG} data-n="(\\d+)"></{EMBED_TAG}>(?:</p>)?')

IMAGE_WIDTHS = (480, 800, 1200, 1600, 2400)
IMAGES_API_MAX = 4000


def image_widths(asset: Asset) -> tuple[int, ...]:
    """The widths to offer for an image the Images API can resize; () for any other image."""
    if not asset.url.startswith(IMAGES_API_HOSTS) or not asset.mime.startswith("image/"):
        return ()
    if asset.mime == "image/svg+xml":
        return ()
    largest = min(asset.width or IMAGE_WIDTHS[-1], IMAGES_API_MAX)
    widths = tuple(w for w in IMAGE_WIDTHS if w < largest) + (largest,)
    return widths


def image_url(asset: Asset, width: int, format: str | None = None) -> str:
    query = f"w={width}" + (f"&fm={format}" if format else "")
    return f"{asset.url}?{query}"


def srcset(asset: Asset, format: str | None = None) -> str:
    return ", ".join(f"{image_url(asset, w, format)} {w}w" for w in image_widths(asset))


def compile_templates(env: jinja2.Environment, names: Iterable[str]) -> None:
    """Compile the templates a build needs, so a syntax error stops it before any page."""
    for name in sorted(set(names)):
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"templates/{exc.name or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"templates/{exc.name} is missing") from exc


def _logo(env: jinja2.Environment) -> str | None:
    logo = env.globals.get("site_logo")
    return logo if isinstance(logo, str) else None


def render_route(env: jinja2.Environment, site: Site, route: Route) -> bytes:
    page = Page(
        url=route.url,
        canonical=site.canonical(route),
        title=route.title,
        heading=route.heading,
        description=route.description,
        noindex=route.noindex or site.preview,
        og_type=route.og_type,
        image=share_image(site, route) if route.is_html else route.image,
        jsonld=Markup(jsonld_text(page_jsonld(site, route, _logo(env))) if route.is_html else ""),
        kind=route.kind,
    )
    try:
        template = env.get_template(route.template)
        text = template.render(page=page, **route.context)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"templates/{exc.name or route.template}:{exc.lineno}: {exc.message}"
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"templates/{exc.name} is missing (needed for {route.url})") from exc
    except (jinja2.UndefinedError, jinja2.TemplateRuntimeError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"templates/{route.template}{_template_line(exc)}: {exc} (while rendering {route.url}"
            f" from {route.origin})"
        ) from exc
    return text.encode("utf-8")


def _template_line(exc: BaseException) -> str:
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".xml", ".txt")):
            line = f" (from {Path(filename).name}:{tb.tb_lineno})"
        tb = tb.tb_next
    return line


def format_date(value: dt.date | None) -> str:
    """'2 November 2026': unambiguous to every reader, unlike 11/02/2026."""
    if value is None:
        return ""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def iso_date(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


def _host(base_url: str) -> str:
    return base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]


class RouteRenderer:
    """Renders routes into a publisher's spare folder, in several processes when there are
    many. Its Jinja environment is made once, for every call."""

    def __init__(
        self,
        site: Site,
        templates_dir: Path,
        static_urls: dict[str, str],
        publisher: Publisher,
        cache_dir: Path,
        texts: TextStore,
        fingerprint: Fingerprinter,
        *,
        parallel_from: int,
    ) -> None:
        def body_key(entry: Entry, text: LongText) -> str:
            # A body's HTML shows its own text, what it embeds and links to, and where its
            # links to other pages lead now.
            refs = sorted(fingerprint.deep(e) for e in entry.refs if isinstance(e, Entry))
            assets = sorted(repr(a) for a in entry.refs if not isinstance(a, Entry))
            resolve = fingerprint.resolve or str
            links = ",".join(resolve(link) for link in entry._links)
            return fingerprint.route_key((text.digest, ",".join(refs), ",".join(assets), links))

        self.site, self.publisher, self.parallel_from = site, publisher, parallel_from
        self.env = make_environment(
            templates_dir, site, static_urls, cache_dir, texts=texts, body_key=body_key
        )

    def __call__(
        self, routes: Sequence[Route], progress: Callable[[str, int, int], None] | None = None
    ) -> list[bool]:
        """Render routes; for each, whether its page's bytes differ from the live copy."""
        env, site, publisher = self.env, self.site, self.publisher
        compile_templates(env, (r.template for r in routes))  # once, before any worker starts
        parent, total = os.getpid(), len(routes)

        def work(shard: Sequence[Route]) -> list[bool]:
            # Only this process reports progress; its share of the routes stands for all.
            tell = progress if progress is not None and os.getpid() == parent else None
            scale = total / max(len(shard), 1)
            # One writer thread per process: file-system calls (slow on virtual disks)
            # overlap with rendering, which holds the GIL while the writer waits in the kernel.
            with ThreadPoolExecutor(max_workers=1) as writer:
                pending = []
                for number, r in enumerate(shard, 1):
                    html = render_route(env, site, r)
                    pending.append(writer.submit(publisher.put, output_path(r.url), html))
                    if tell is not None:
                        tell("rendering", min(round(number * scale), total), total)
                done = [future.result() for future in pending]
            flush_bodies(env)
            return done

        workers = 0 if len(routes) < self.parallel_from else None
        return run_sharded(work, list(routes), workers=workers)
