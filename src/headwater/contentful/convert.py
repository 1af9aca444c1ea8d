"""Contentful items as headwater sees them: each field in one locale (with Contentful's fallback
chain), entries as RawEntry, assets as Asset. Links stay as Contentful link objects; the schema
stage resolves them by id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from headwater.errors import ConfigError, SourceError
from headwater.model import Asset, Problem, RawEntry

Raw = dict[str, Any]
TITLE_FIELDS = ("title", "name", "siteName")


class Localizer:
    """Picks each field's value in one locale, following fallbackCode while it is absent."""

    def __init__(self, locales: Iterable[Raw], content_types: Iterable[Raw], wanted: str | None):
        codes = {loc["code"]: loc for loc in locales if isinstance(loc.get("code"), str)}
        default = next((c for c, loc in codes.items() if loc.get("default")), None)
        if default is None:
            raise SourceError("Contentful's /locales names no default locale")
        start = wanted or default
        if start not in codes:
            raise ConfigError(
                f"CONTENTFUL_LOCALE {start!r} is not a locale of the space; "
                f"it has {', '.join(sorted(codes))}"
            )
        chain = [start]
        # Follow fallbackCode to its end; a cycle (possible through the API) stops the chain.
        while (after := codes.get(chain[-1], {}).get("fallbackCode")) and after not in chain:
            chain.append(after)
        self.chain = chain
        self.default = default
        self.unlocalized = {
            ct["sys"]["id"]: {f["id"] for f in ct.get("fields", []) if not f.get("localized")}
            for ct in content_types
            if isinstance(ct.get("sys"), dict)
        }

    def fields(self, raw: Raw, content_type: str | None) -> dict[str, Any]:
        fixed = self.unlocalized.get(content_type or "", set())
        result: dict[str, Any] = {}
        for name, values in (raw.get("fields") or {}).items():
            if not isinstance(values, dict):
                continue
            # A field that is not localized holds its one value under the default locale.
            for code in [self.default] if name in fixed else self.chain:
                if code in values:
                    result[name] = values[code]
                    break
        return result

    def label(self, raw: Raw) -> str:
        """An item's title for messages and listings: 'article “What Causes PTSD?”'."""
        sys = raw["sys"]
        if sys.get("type") == "Asset":
            return f"asset “{text(self.fields(raw, None).get('title')) or sys['id']}”"
        content_type = content_type_of(raw)
        return f"{content_type} “{title_of(self.fields(raw, content_type), sys['id'])}”"


def raw_entry(raw: Raw, localizer: Localizer, web_app: str, digest: str) -> RawEntry:
    """A stored entry as the schema stage reads it."""
    content_type = content_type_of(raw)
    fields = localizer.fields(raw, content_type)
    entry_id = raw["sys"]["id"]
    return RawEntry(
        id=entry_id,
        content_type=content_type,
        fields=fields,
        origin=entry_origin(content_type, title_of(fields, entry_id), web_app, entry_id),
        digest=digest,
    )


def entry_origin(content_type: str, title: str, web_app: str, entry_id: str) -> str:
    """Where an editor finds an entry: its type, title and web-app URL."""
    return f"{content_type} “{title}” ({web_app}/entries/{entry_id})"


def asset_of(raw: Raw, localizer: Localizer, web_app: str) -> Asset | Problem:
    """A stored asset, or the problem that keeps it off the site (no file in this locale)."""
    asset_id = raw["sys"]["id"]
    fields = localizer.fields(raw, None)
    file = fields.get("file")
    title = text(fields.get("title")) or asset_id
    if not (isinstance(file, dict) and isinstance(file.get("url"), str) and file["url"]):
        return Problem(
            f"asset “{title}” ({web_app}/assets/{asset_id})",
            "file",
            "file",
            "the asset has no file in this locale; upload one, or remove the asset",
        )
    url = file["url"]
    source = url if url.startswith(("http://", "https://")) else "https:" + url
    details = _dict(file.get("details"))
    image = _dict(details.get("image"))
    return Asset(
        id=asset_id,
        title=text(fields.get("title")) or text(file.get("fileName")) or asset_id,
        alt=text(fields.get("description")),
        mime=text(file.get("contentType")) or "application/octet-stream",
        source=source,
        url=source,
        width=_int(image.get("width")),
        height=_int(image.get("height")),
        size=_int(details.get("size")),
    )


def has_id(item: Any) -> bool:
    sys = item.get("sys") if isinstance(item, dict) else None
    return isinstance(sys, dict) and isinstance(sys.get("id"), str)


def content_type_of(raw: Raw) -> str:
    link = raw["sys"].get("contentType")
    try:
        return str(link["sys"]["id"])
    except (KeyError, TypeError):
        return ""


def version_of(raw: Raw) -> str:
    """What changes with every publish (Delivery: revision) or save (Preview: version)."""
    sys = raw["sys"]
    return f"{sys.get('revision') or sys.get('version') or 0}:{sys.get('updatedAt')}"


def title_of(fields: dict[str, Any], fallback: str) -> str:
    return next((v for k in TITLE_FIELDS if (v := text(fields.get(k)))), fallback)


def text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
