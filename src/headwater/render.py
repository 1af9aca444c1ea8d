"""Render the planned site's routes to bytes with the Jinja2 theme in `templates/`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from headwater.errors import ConfigError
from headwater.markup import Body, MarkdownRenderer
from headwater.model import Asset, Entry
from headwater.site import Route, Site, jsonld_text, page_jsonld

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


def output_path(url: str) -> str:
    """The file a pretty URL is served from: '/blog/x/' -> 'blog/x/index.html'."""
    path = url.lstrip("/")
    return path + "index.html" if path.endswith("/") or not path else path


def render_site(
    site: Site, templates_dir: Path, static_urls: Mapping[str, str]
) -> dict[str, bytes]:
    """Render every route; a theme error names the template, the line and the page."""
    env = make_environment(templates_dir, site, static_urls)
    return {output_path(route.url): render_route(env, site, route) for route in site.routes}


def make_environment(
    templates_dir: Path, site: Site, static_urls: Mapping[str, str]
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
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

    def body(entry: Entry) -> Body:
        text = entry.fields.get("body")
        if isinstance(text, str):
            return markdown.render(text)
        return Body(html="", toc=(), words=0)

    def render_markdown(text: str | None) -> Markup:
        return Markup(markdown.render(text).html) if text else Markup("")

    def render_inline(text: str | None) -> Markup:
        return Markup(markdown.render_inline(text)) if text else Markup("")

    env.globals.update(
        asset_url=asset_url,
        body=_MarkupBody(body),
        markdown=render_markdown,
        inline_markdown=render_inline,
        site=site,
    )
    env.filters.update(date=format_date, isodate=iso_date, absolute=site.absolute)
    return env


class _MarkupBody:
    """Wraps body() so templates get `.html` as Markup, not an escaped string."""

    def __init__(self, render: Any) -> None:
        self._render = render

    def __call__(self, entry: Entry) -> Any:
        rendered: Body = self._render(entry)
        return _BodyView(
            Markup(rendered.html), rendered.toc, rendered.words, rendered.reading_minutes
        )


@dataclass(frozen=True)
class _BodyView:
    html: Markup
    toc: tuple[Any, ...]
    words: int
    reading_minutes: int


def render_route(env: jinja2.Environment, site: Site, route: Route) -> bytes:
    page = Page(
        url=route.url,
        canonical=site.canonical(route),
        title=route.title,
        heading=route.heading,
        description=route.description,
        noindex=route.noindex or site.preview,
        og_type=route.og_type,
        image=route.image,
        jsonld=Markup(jsonld_text(page_jsonld(site, route)) if route.is_html else ""),
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
