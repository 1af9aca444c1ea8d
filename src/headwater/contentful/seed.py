"""Import the sample content/ into an empty Contentful space, so a clinic starts from the sample.

Pushes the content model (`headwater schema push`), uploads every image of content/ as an asset
(its alt text as the asset's description, which the site uses as alt), creates every entry with
its fields in the space's default locale — Markdown bodies of RichText fields converted to
RichText, site-internal links to entry links, slugs to entry links — and publishes assets and
entries so that what an entry links to is published before it.

    CONTENTFUL_SPACE_ID=… CONTENTFUL_MANAGEMENT_TOKEN=… python scripts/seed_contentful.py
    python scripts/seed_contentful.py --dry-run    # print the plan; no token, no network

Entry ids are `<contentType>-<slug>` (`siteSettings` for the settings), so a half-finished run
is easy to find and clean up in the web app. The space must hold no entries yet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.contentful.management import ManagementClient
from headwater.contentful.markdown_richtext import markdown_to_richtext
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import ConfigError, ContentError, SourceError
from headwater.model import Link, Problem, entry_label
from headwater.schema import load_model
from headwater.sources.local import SETTINGS_TYPE, load_snapshot

DEFAULT_LOCALE = "en-US"
PROCESSING_POLLS = 30
# Where each content type is published (see DESIGN.md): a Markdown link to one of these paths
# becomes a link to the entry, so it follows the entry when its slug changes.
URL_PATTERNS = (
    ("article", re.compile(r"^/blog/([a-z0-9-]+)/?$")),
    ("topic", re.compile(r"^/topics/([a-z0-9-]+)/?$")),
    ("author", re.compile(r"^/authors/([a-z0-9-]+)/?$")),
    ("page", re.compile(r"^/([a-z0-9-]+)/?$")),
)
_ID = re.compile(r"[^a-zA-Z0-9._-]+")


@dataclass(frozen=True)
class AssetPlan:
    """One image of content/ to upload: each distinct alt text is an asset of its own."""

    id: str
    title: str
    description: str
    path: Path
    content_type: str

    @property
    def fields(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description}


@dataclass(frozen=True)
class EntryPlan:
    """One entry to create: its id, type and fields keyed by field id, then by locale."""

    id: str
    content_type: str
    label: str
    fields: dict[str, dict[str, Any]]
    links: tuple[str, ...] = ()
    """The ids of the entries it links to."""


@dataclass
class SeedPlan:
    """Everything to create, in the order to publish it: assets, then entries after their links."""

    locale: str
    assets: list[AssetPlan] = field(default_factory=list)
    entries: list[EntryPlan] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"{len(self.assets)} assets and {len(self.entries)} entries, locale {self.locale}"]
        for asset in self.assets:
            lines.append(f"asset {asset.id}: {asset.path.name} ({asset.content_type})")
            lines.append(f"  description (alt): {asset.description}")
        for entry in self.entries:
            lines.append(f"entry {entry.id} ({entry.content_type}): {entry.label}")
            for name, values in entry.fields.items():
                lines.append(f"  {name}: {_preview(values[self.locale])}")
        return lines


def plan_seed(project: Path, locale: str = DEFAULT_LOCALE) -> SeedPlan:
    """What seeding would create from project/content/, checked against project/cms_schema/."""
    snapshot = load_snapshot(project / "content")
    raws = list(snapshot.reader.read(list(snapshot.heads)).values())
    if snapshot.problems:
        raise ContentError(snapshot.problems)
    model = load_model(project / "cms_schema")
    schema = {type_id: {f["id"]: f for f in model.fields(type_id)} for type_id in model.types}
    plan = SeedPlan(locale=locale)
    asset_ids = {}
    for key, asset in sorted(snapshot.assets.items()):
        asset_ids[key] = _asset_id(key)
        plan.assets.append(
            AssetPlan(
                id=asset_ids[key],
                title=asset.title,
                description=asset.alt,
                path=Path(asset.source),
                content_type=asset.mime,
            )
        )
    by_slug = {
        (e.content_type, str(e.fields.get("slug"))): _entry_id(e.content_type, e.fields)
        for e in raws
    }

    def entry_link(url: str) -> dict[str, Any] | None:
        path = url.split("#", 1)[0].split("?", 1)[0]
        for content_type, pattern in URL_PATTERNS:
            match = pattern.match(path)
            if match and (content_type, match.group(1)) in by_slug:
                return _link("Entry", by_slug[content_type, match.group(1)])
        return None

    entries = []
    problems: list[Problem] = []
    for entry in sorted(raws, key=lambda e: _entry_id(e.content_type, e.fields)):
        fields: dict[str, dict[str, Any]] = {}
        links: set[str] = set()
        definitions = schema.get(entry.content_type)
        if definitions is None:
            raise ConfigError(f"{entry.origin}: cms_schema/ has no type {entry.content_type!r}")
        for name, value in entry.fields.items():
            definition = definitions.get(name)
            if definition is None or value is None:
                continue
            try:
                converted = _convert(value, definition, by_slug, asset_ids, entry_link, links)
            except LookupError as exc:
                problems.append(Problem(entry.origin, name, "link", str(exc.args[0]), value))
                continue
            fields[name] = {locale: converted}
        entries.append(
            EntryPlan(
                id=_entry_id(entry.content_type, entry.fields),
                content_type=entry.content_type,
                label=entry_label(entry.fields, entry.id),
                fields=fields,
                links=tuple(sorted(links)),
            )
        )
    if problems:
        raise ContentError(problems)
    plan.entries = _publish_order(entries)
    return plan


def _convert(
    value: Any,
    definition: Mapping[str, Any],
    by_slug: Mapping[tuple[str, str], str],
    asset_ids: Mapping[str, str],
    entry_link: Callable[[str], dict[str, Any] | None],
    links: set[str],
) -> Any:
    kind = definition.get("type")
    if kind == "Array":
        items = definition.get("items", {})
        item = {**items, "validations": items.get("validations", [])}
        return [_convert(v, item, by_slug, asset_ids, entry_link, links) for v in value]
    if kind == "Link" and isinstance(value, Link):
        return _link("Asset", asset_ids[value.key])
    if kind == "Link" and definition.get("linkType") == "Entry":
        allowed = [
            t for v in definition.get("validations", []) for t in v.get("linkContentType", [])
        ]
        for content_type in allowed or sorted({t for t, _ in by_slug}):
            if (content_type, str(value)) in by_slug:
                links.add(by_slug[content_type, str(value)])
                return _link("Entry", by_slug[content_type, str(value)])
        raise LookupError("no entry has this slug")
    if kind == "RichText":

        def target(url: str) -> dict[str, Any] | None:
            found = entry_link(url)
            if found is not None:
                links.add(found["sys"]["id"])
            return found

        return markdown_to_richtext(str(value), link_target=target)
    if kind == "Date" and isinstance(value, dt.date):
        return value.isoformat()
    return value


def _link(link_type: str, ident: str) -> dict[str, Any]:
    return {"sys": {"type": "Link", "linkType": link_type, "id": ident}}


def _entry_id(content_type: str, fields: Mapping[str, Any]) -> str:
    if content_type == SETTINGS_TYPE:
        return SETTINGS_TYPE
    return _safe_id(f"{content_type}-{fields.get('slug')}")


def _asset_id(key: str) -> str:
    stem = Path(key.split("#", 1)[0]).stem
    return _safe_id(f"image-{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}")


def _safe_id(text: str) -> str:
    """Contentful ids: 1 to 64 of a-z, A-Z, 0-9, '.', '_' and '-'."""
    ident = _ID.sub("-", text).strip("-")
    if len(ident) > 64:
        ident = f"{ident[:55]}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"
    return ident


def _publish_order(entries: Sequence[EntryPlan]) -> list[EntryPlan]:
    """Linked entries first; a cycle (two articles relating to each other) in id order.

    Depth first without recursion: a chain of related articles may be as long as the blog.
    """
    by_id = {e.id: e for e in entries}
    ordered: list[EntryPlan] = []
    seen: set[str] = set()  # on the current path, or placed
    for root in entries:
        if root.id in seen:
            continue
        seen.add(root.id)
        stack = [(root, iter(root.links))]
        while stack:
            entry, targets = stack[-1]
            for target in targets:
                if target in by_id and target not in seen:
                    seen.add(target)
                    stack.append((by_id[target], iter(by_id[target].links)))
                    break
            else:
                stack.pop()
                ordered.append(entry)
    return ordered


def _preview(value: Any) -> str:
    if isinstance(value, dict) and value.get("nodeType") == "document":
        kinds = [node["nodeType"] for node in value["content"]]
        return f"RichText ({len(kinds)} blocks: {', '.join(sorted(set(kinds)))})"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 90 else text[:89] + "…"


# Writing to the space.


def upload_base(settings: ContentfulSettings, override: str | None = None) -> str:
    """The Upload API: upload.contentful.com beside api.contentful.com (EU alike)."""
    if override:
        return override.rstrip("/") if "://" in override else f"https://{override.rstrip('/')}"
    return settings.management_host.replace("://api.", "://upload.", 1)


def seed(
    client: ManagementClient,
    plan: SeedPlan,
    *,
    uploads: str,
    report: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create and publish the plan's assets and entries in a space that has no entries."""
    env = client.settings.environment_path
    found = client.get(f"{env}/entries", what="the entries already there", params={"limit": 0})
    if int(found.get("total", 0)):
        raise ConfigError(
            f"the space already holds {found['total']} entries; seeding is for an empty space"
        )
    for asset in plan.assets:
        report(f"uploading {asset.path.name} as asset {asset.id}")
        upload = client.request(
            "POST",
            f"/spaces/{client.settings.space}/environments/{client.settings.environment}/uploads",
            what=f"uploading {asset.path.name}",
            data=asset.path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
            url=f"{uploads}/spaces/{client.settings.space}"
            f"/environments/{client.settings.environment}/uploads",
        )
        assert upload is not None
        fields = {name: {plan.locale: value} for name, value in asset.fields.items()}
        fields["file"] = {
            plan.locale: {
                "contentType": asset.content_type,
                "fileName": asset.path.name,
                "uploadFrom": {
                    "sys": {"type": "Link", "linkType": "Upload", "id": upload["sys"]["id"]}
                },
            }
        }
        path = f"{env}/assets/{asset.id}"
        created = client.put(path, {"fields": fields}, what=f"asset {asset.id}", version=None)
        client.put(
            f"{path}/files/{plan.locale}/process",
            None,
            what=f"processing asset {asset.id}",
            version=created["sys"]["version"],
        )
        version = _processed_version(client, path, plan.locale, asset.id, sleep)
        client.put(f"{path}/published", None, what=f"publishing asset {asset.id}", version=version)
    versions: dict[str, int] = {}
    for entry in plan.entries:
        report(f"creating entry {entry.id} ({entry.content_type}: {entry.label})")
        saved = client.request(
            "PUT",
            f"{env}/entries/{entry.id}",
            what=f"entry {entry.id}",
            body={"fields": entry.fields},
            headers={"X-Contentful-Content-Type": entry.content_type},
        )
        assert saved is not None
        versions[entry.id] = int(saved["sys"]["version"])
    for entry in plan.entries:
        report(f"publishing entry {entry.id}")
        client.put(
            f"{env}/entries/{entry.id}/published",
            None,
            what=f"publishing entry {entry.id}",
            version=versions[entry.id],
        )


def _processed_version(
    client: ManagementClient, path: str, locale: str, ident: str, sleep: Callable[[float], None]
) -> int:
    """Processing runs in the background: wait until the file has its URL."""
    for _ in range(PROCESSING_POLLS):
        asset = client.get(path, what=f"asset {ident}")
        if asset.get("fields", {}).get("file", {}).get(locale, {}).get("url"):
            return int(asset["sys"]["version"])
        sleep(1.0)
    raise SourceError(f"asset {ident} was not processed after {PROCESSING_POLLS} seconds")


def default_locale(client: ManagementClient) -> str:
    locales = client.get(f"{client.settings.environment_path}/locales", what="the locales")
    for item in locales.get("items", []):
        if item.get("default"):
            return str(item["code"])
    return DEFAULT_LOCALE
