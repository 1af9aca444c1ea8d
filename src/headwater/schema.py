"""Load the content model from `cms_schema/` and check a snapshot against it.

The model files are Contentful content types, so the rules here are Contentful's field types
and validations, applied to every source alike. Checking also resolves links: a validated
entry's link fields hold the Entry and Asset objects they point to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.errors import ConfigError
from headwater.model import (
    ASSET,
    ENTRY,
    RESERVED_FIELD_IDS,
    Asset,
    Content,
    Entry,
    Link,
    Problem,
    Snapshot,
)

SETTINGS_TYPE = "siteSettings"
SYMBOL_MAX = 256
TEXT_MAX = 50_000

# Contentful's asset MIME groups, by the MIME types that fall in each.
MIME_GROUPS: dict[str, Callable[[str], bool]] = {
    "image": lambda m: m.startswith("image/"),
    "audio": lambda m: m.startswith("audio/"),
    "video": lambda m: m.startswith("video/"),
    "plaintext": lambda m: m == "text/plain",
    "markup": lambda m: m in ("text/html", "application/xml", "text/xml"),
    "richtext": lambda m: m in ("application/rtf", "text/rtf") or "wordprocessingml" in m,
    "pdfdocument": lambda m: m == "application/pdf",
    "spreadsheet": lambda m: "spreadsheet" in m or m in ("text/csv", "application/vnd.ms-excel"),
    "presentation": lambda m: "presentation" in m or m == "application/vnd.ms-powerpoint",
    "archive": lambda m: m in ("application/zip", "application/gzip", "application/x-tar"),
    "code": lambda m: m in ("application/json", "text/javascript", "text/css"),
    "attachment": lambda m: True,
}


@dataclass(frozen=True)
class ContentModel:
    """The content types by id, as read from `cms_schema/*.json`."""

    types: dict[str, dict[str, Any]]

    def fields(self, content_type: str) -> list[dict[str, Any]]:
        return [f for f in self.types[content_type]["fields"] if not f.get("omitted")]


def load_model(schema_dir: Path) -> ContentModel:
    """Read every content type file; a malformed one is a configuration error."""
    types: dict[str, dict[str, Any]] = {}
    for path in sorted(schema_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            type_id = data["sys"]["id"]
            fields = data["fields"]
            if not isinstance(fields, list) or not all("id" in f and "type" in f for f in fields):
                raise KeyError("fields")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a Contentful content type ({exc})") from exc
        clashes = RESERVED_FIELD_IDS & {f["id"] for f in fields}
        if clashes:
            raise ConfigError(f"{path}: field ids {', '.join(sorted(clashes))} are reserved")
        types[type_id] = data
    if not types:
        raise ConfigError(f"no content types found in {schema_dir}")
    return ContentModel(types)


def check_snapshot(snapshot: Snapshot, model: ContentModel) -> tuple[Content | None, list[Problem]]:
    """Check every entry against the model; return resolved content and every problem found."""
    problems = list(snapshot.problems)
    entries: list[Entry] = []
    for entry in snapshot.entries:
        if entry.content_type not in model.types:
            problems.append(
                Problem(
                    entry.origin,
                    "",
                    "contentType",
                    f"unknown content type {entry.content_type!r}; the model has "
                    f"{', '.join(sorted(model.types))}",
                )
            )
            continue
        checked = _check_fields(entry, model.fields(entry.content_type), problems)
        entries.append(dataclasses.replace(entry, fields=checked))
    problems += _check_unique(entries, model)
    _resolve_links(entries, snapshot.assets, model, problems)
    settings = [e for e in entries if e.content_type == SETTINGS_TYPE]
    if SETTINGS_TYPE in model.types and len(settings) != 1:
        problems.append(
            Problem(
                SETTINGS_TYPE,
                "",
                "singleton",
                f"there must be exactly one {SETTINGS_TYPE} entry, found {len(settings)}",
            )
        )
    if problems or not settings:
        return None, problems
    return Content(entries=entries, assets=snapshot.assets, settings=settings[0]), problems


def _check_fields(
    entry: Entry, fields: list[dict[str, Any]], problems: list[Problem]
) -> dict[str, Any]:
    known = {f["id"] for f in fields}
    for name in entry.fields:
        if name not in known:
            problems.append(
                Problem(
                    entry.origin,
                    name,
                    "unknownField",
                    f"{entry.content_type} has no field {name!r}; its fields are "
                    f"{', '.join(sorted(known))}",
                )
            )
    checked: dict[str, Any] = {}
    for spec in fields:
        name = spec["id"]
        value = entry.fields.get(name)
        if value in (None, "", [], {}):
            if spec.get("required"):
                problems.append(
                    Problem(entry.origin, name, "required", f"{spec.get('name', name)} is required")
                )
            checked[name] = [] if spec["type"] == "Array" else None
            continue
        checked[name] = _check_value(entry.origin, name, spec, value, problems)
    return checked


def _check_value(
    origin: str, name: str, spec: dict[str, Any], value: Any, problems: list[Problem]
) -> Any:
    kind = spec["type"]
    if kind == "Array":
        if not isinstance(value, list):
            value = [value] if spec.get("items", {}).get("type") == "Link" else value
        if not isinstance(value, list):
            problems.append(Problem(origin, name, "type", "must be a list", value))
            return []
        items = spec.get("items", {})
        item_spec = {
            "type": items.get("type"),
            "linkType": items.get("linkType"),
            "validations": items.get("validations", []),
        }
        result = [
            _check_value(origin, f"{name}[{i}]", item_spec, item, problems)
            for i, item in enumerate(value)
        ]
        _apply_validations(origin, name, spec, result, problems)
        return result
    converted = _coerce(kind, spec.get("linkType"), value)
    if converted is _WRONG:
        expected = _EXPECTED.get(kind, kind)
        problems.append(Problem(origin, name, "type", f"must be {expected}", value))
        return None
    limit = {"Symbol": SYMBOL_MAX, "Text": TEXT_MAX}.get(kind)
    if limit and len(converted) > limit:
        problems.append(
            Problem(
                origin,
                name,
                "size",
                f"{kind} fields hold at most {limit} characters, this has {len(converted)}",
                converted,
            )
        )
    _apply_validations(origin, name, spec, converted, problems)
    return converted


_WRONG = object()
_EXPECTED = {
    "Symbol": "a short text (a string)",
    "Text": "a text (a string)",
    "RichText": "rich text (Markdown in the local snapshot)",
    "Integer": "a whole number",
    "Number": "a number",
    "Date": "a date like 2026-11-02",
    "Boolean": "true or false",
    "Object": "a JSON object",
    "Location": "a location {lat, lon}",
    "Link": "a link (the slug of an entry, or an image {file, alt})",
}


def _coerce(kind: str, link_type: str | None, value: Any) -> Any:
    if kind in ("Symbol", "Text"):
        return value if isinstance(value, str) else _WRONG
    if kind == "RichText":
        if isinstance(value, str) or (
            isinstance(value, dict) and value.get("nodeType") == "document"
        ):
            return value
        return _WRONG
    if kind == "Integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if kind == "Number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else _WRONG
    if kind == "Boolean":
        return value if isinstance(value, bool) else _WRONG
    if kind == "Date":
        return _to_date(value)
    if kind == "Object":
        return value if isinstance(value, dict | list) else _WRONG
    if kind == "Location":
        ok = isinstance(value, dict) and {"lat", "lon"} <= value.keys()
        return value if ok else _WRONG
    if kind == "Link":
        return _to_link(link_type, value)
    return _WRONG


def _to_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return _WRONG
    return _WRONG


def _to_link(link_type: str | None, value: Any) -> Any:
    if isinstance(value, Link):
        return value if value.link_type == link_type else _WRONG
    if isinstance(value, str) and link_type == ENTRY:
        return Link(ENTRY, value, by_slug=True)
    if isinstance(value, dict):
        sys = value.get("sys", {})
        if sys.get("type") == "Link" and sys.get("linkType") == link_type and sys.get("id"):
            return Link(str(link_type), str(sys["id"]))
    return _WRONG


def _apply_validations(
    origin: str, name: str, spec: dict[str, Any], value: Any, problems: list[Problem]
) -> None:
    for rule in spec.get("validations", []):
        for key, arg in rule.items():
            check = _VALIDATORS.get(key)
            if check is None:
                continue
            failure = check(arg, value)
            if failure:
                message = rule.get("message") or failure
                if rule.get("message"):
                    message = f"{rule['message']} ({failure})"
                problems.append(Problem(origin, name, key, message, _shown(value)))


def _shown(value: Any) -> Any:
    if isinstance(value, Link):
        return value.key
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _size(arg: dict[str, int], value: Any) -> str | None:
    if not isinstance(value, str | list):
        return None
    n = len(value)
    unit = "characters" if isinstance(value, str) else "items"
    low, high = arg.get("min"), arg.get("max")
    if low is not None and n < low:
        return f"needs at least {low} {unit}, has {n}"
    if high is not None and n > high:
        return f"allows at most {high} {unit}, has {n}"
    return None


def _range(arg: dict[str, float], value: Any) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    low, high = arg.get("min"), arg.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"must be between {low} and {high}"
    return None


def _regex(arg: dict[str, Any]) -> re.Pattern[str]:
    flags = 0
    for letter in arg.get("flags") or "":
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(letter, 0)
    return re.compile(arg["pattern"], flags)


def _regexp(arg: dict[str, Any], value: Any) -> str | None:
    if isinstance(value, str) and not _regex(arg).search(value):
        return f"must match the pattern {arg['pattern']}"
    return None


def _prohibit_regexp(arg: dict[str, Any], value: Any) -> str | None:
    if isinstance(value, str) and _regex(arg).search(value):
        return f"must not match the pattern {arg['pattern']}"
    return None


def _in(arg: list[Any], value: Any) -> str | None:
    if value is not None and not isinstance(value, list) and value not in arg:
        return f"must be one of {', '.join(map(str, arg))}"
    return None


def _date_range(arg: dict[str, str], value: Any) -> str | None:
    if not isinstance(value, dt.date):
        return None
    low, high = (_to_date(arg.get(k)) if arg.get(k) else None for k in ("min", "max"))
    if (isinstance(low, dt.date) and value < low) or (isinstance(high, dt.date) and value > high):
        return f"must be between {arg.get('min')} and {arg.get('max')}"
    return None


_VALIDATORS: dict[str, Callable[[Any, Any], str | None]] = {
    "size": _size,
    "range": _range,
    "regexp": _regexp,
    "prohibitRegexp": _prohibit_regexp,
    "in": _in,
    "dateRange": _date_range,
}


def _check_unique(entries: list[Entry], model: ContentModel) -> list[Problem]:
    problems: list[Problem] = []
    for type_id in model.types:
        for spec in model.fields(type_id):
            if not any(rule.get("unique") for rule in spec.get("validations", [])):
                continue
            seen: dict[Any, list[Entry]] = defaultdict(list)
            for entry in entries:
                value = entry.fields.get(spec["id"])
                if entry.content_type == type_id and value is not None:
                    seen[value].append(entry)
            for value, holders in seen.items():
                if len(holders) < 2:
                    continue
                for entry in holders:
                    others = ", ".join(o.origin for o in holders if o is not entry)
                    problems.append(
                        Problem(
                            entry.origin,
                            spec["id"],
                            "unique",
                            f"must be unique among {type_id} entries; also used by {others}",
                            value,
                        )
                    )
    return problems


def _resolve_links(
    entries: list[Entry], assets: dict[str, Asset], model: ContentModel, problems: list[Problem]
) -> None:
    by_id = {e.id: e for e in entries}
    by_slug: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        slug = entry.fields.get("slug")
        if isinstance(slug, str):
            by_slug[slug].append(entry)
    link_fields = {type_id: _link_fields(model, type_id) for type_id in model.types}
    for entry in entries:
        fields = entry.fields
        for name, is_array, allowed, groups in link_fields[entry.content_type]:
            value = fields[name]
            if not is_array:
                fields[name] = (
                    _resolve(entry, name, value, allowed, groups, by_id, by_slug, assets, problems)
                    if isinstance(value, Link)
                    else None
                )
                continue
            resolved = [
                _resolve(
                    entry, f"{name}[{i}]", link, allowed, groups, by_id, by_slug, assets, problems
                )
                for i, link in enumerate(value)
                if isinstance(link, Link)
            ]
            fields[name] = [r for r in resolved if r is not None]
        entry.expose()


def _link_fields(
    model: ContentModel, type_id: str
) -> list[tuple[str, bool, list[str] | None, list[str] | None]]:
    """A type's link fields: name, whether an array, allowed entry types, allowed MIME groups."""
    found = []
    for spec in model.fields(type_id):
        is_array = spec["type"] == "Array"
        item = spec.get("items", {}) if is_array else spec
        if item.get("type") == "Link":
            allowed = _link_rule(item, "linkContentType")
            found.append((spec["id"], is_array, allowed, _link_rule(item, "linkMimetypeGroup")))
    return found


def _in_group(group: str, mime: str) -> bool:
    test = MIME_GROUPS.get(group)
    return test is not None and test(mime)


def _link_rule(spec: dict[str, Any], key: str) -> list[str] | None:
    for rule in spec.get("validations", []):
        if key in rule:
            return list(rule[key])
    return None


def _resolve(
    entry: Entry,
    name: str,
    link: Link,
    allowed: list[str] | None,
    groups: list[str] | None,
    by_id: dict[str, Entry],
    by_slug: dict[str, list[Entry]],
    assets: dict[str, Asset],
    problems: list[Problem],
) -> Entry | Asset | None:
    if link.link_type == ASSET:
        asset = assets.get(link.key)
        if asset is None:
            problems.append(
                Problem(entry.origin, name, "link", "links to a missing asset", link.key)
            )
            return None
        if groups and not any(_in_group(g, asset.mime) for g in groups):
            problems.append(
                Problem(
                    entry.origin,
                    name,
                    "linkMimetypeGroup",
                    f"must be a file of type {' or '.join(groups)}, not {asset.mime}",
                    asset.id,
                )
            )
        if asset.mime.startswith("image/") and not asset.alt:
            problems.append(
                Problem(
                    entry.origin,
                    name,
                    "altText",
                    "the image needs alt text describing it for people who cannot see it",
                    asset.id,
                )
            )
        return asset
    candidates = _candidates(link, by_id, by_slug)
    wanted = [c for c in candidates if allowed is None or c.content_type in allowed]
    kinds = " or ".join(allowed or ["entry"])
    if not wanted:
        if candidates:
            found = ", ".join(f"{c.content_type} {c.origin}" for c in candidates)
            problems.append(
                Problem(
                    entry.origin,
                    name,
                    "linkContentType",
                    f"must link to {_a(kinds)}, but {link.key!r} is {found}",
                    link.key,
                )
            )
        else:
            problems.append(
                Problem(
                    entry.origin,
                    name,
                    "link",
                    f"links to {_a(kinds)} that does not exist",
                    link.key,
                )
            )
        return None
    return wanted[0]


def _candidates(
    link: Link, by_id: dict[str, Entry], by_slug: dict[str, list[Entry]]
) -> Iterable[Entry]:
    if link.by_slug:
        return by_slug.get(link.key, [])
    target = by_id.get(link.key)
    return [target] if target else []


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
