"""Load the content model from `cms_schema/` and check one entry's fields against it.

The model files are Contentful content types, so the rules here are Contentful's field types
and validations, applied to every source alike. What needs more than one entry (unique
values, links) is checked when the entries are put together (content.py).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.contentful.richtext import references
from headwater.errors import ConfigError
from headwater.links import (
    BodyLink,
    content_path,
    is_internal,
    is_relative,
    markdown_links,
    richtext_links,
)
from headwater.model import (
    ASSET,
    ENTRY,
    RESERVED_FIELD_IDS,
    Link,
    LongText,
    Problem,
    RawEntry,
    local_asset_id,
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
    digest: str = ""
    """A hash of the model files: what every validated entry depends on."""
    _fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False)

    def fields(self, content_type: str) -> list[dict[str, Any]]:
        found = self._fields.get(content_type)
        if found is None:
            spec = self.types[content_type]["fields"]
            found = self._fields[content_type] = [f for f in spec if not f.get("omitted")]
        return found

    def structural_fields(self, content_type: str) -> list[str]:
        """The fields that decide which pages exist and what they list: links, dates, flags
        and numbers, and unique values such as the slug (see `structure`)."""
        found = []
        for spec in self.fields(content_type):
            kind = spec["type"]
            item = spec.get("items", {}).get("type") if kind == "Array" else None
            unique = any(rule.get("unique") for rule in spec.get("validations", []))
            if kind in STRUCTURAL_TYPES or item in STRUCTURAL_TYPES or unique:
                found.append(spec["id"])
        return found

    def unique_fields(self, content_type: str) -> list[str]:
        return [
            spec["id"]
            for spec in self.fields(content_type)
            if any(rule.get("unique") for rule in spec.get("validations", []))
        ]

    def link_fields(self, content_type: str) -> list[LinkField]:
        """A type's link fields: name, whether an array, allowed entry types and MIME groups."""
        found = []
        for spec in self.fields(content_type):
            is_array = spec["type"] == "Array"
            item = spec.get("items", {}) if is_array else spec
            if item.get("type") == "Link":
                found.append(
                    LinkField(
                        spec["id"],
                        is_array,
                        _link_rule(item, "linkContentType"),
                        _link_rule(item, "linkMimetypeGroup"),
                    )
                )
        return found


STRUCTURAL_TYPES = frozenset({"Link", "Date", "Boolean", "Integer", "Number", "Object", "Location"})


def structure(entry: Checked, model: ContentModel) -> str:
    """What of an entry decides the site's map: which pages exist, their URLs, what lists
    show it and in what order. An edit that leaves this alone (a title, a summary, a body)
    changes only the pages that show the entry."""
    values = [
        (name, entry.fields.get(name)) for name in model.structural_fields(entry.content_type)
    ]
    return repr((entry.content_type, values))


@dataclass(frozen=True)
class LinkField:
    name: str
    is_array: bool
    content_types: list[str] | None
    mime_groups: list[str] | None


@dataclass(frozen=True)
class Checked:
    """One entry checked against the model, its links not yet resolved: what the content
    cache keeps, so an unchanged entry is not checked again."""

    id: str
    content_type: str
    origin: str
    digest: str
    fields: dict[str, Any]
    """Field values as the model types them; links as Link; RichText values as LongText."""
    texts: tuple[LongText, ...] = ()
    refs: tuple[tuple[Link, str, str, int | None], ...] = ()
    """What the long texts reference: (link, field, node type, line) each — RichText embeds
    and entry links, and the images of Markdown bodies."""
    links: tuple[tuple[str, str, int | None], ...] = ()
    """The plain links of the long texts: (target, field, line) each, checked against the
    site's pages when it is planned."""
    lines: Mapping[str, int] = field(default_factory=dict)

    def problem(
        self, name: str, rule: str, message: str, value: Any = None, line: int | None = None
    ) -> Problem:
        """A problem with one of this entry's fields, at the field's line (or `line`)."""
        line = line or self.lines.get(name.split("[", 1)[0])
        return Problem(self.origin, name, rule, message, value, line)


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
    digest = hashlib.blake2b(json.dumps(types, sort_keys=True).encode(), digest_size=16).hexdigest()
    return ContentModel(types, digest)


def check_entry(raw: RawEntry, model: ContentModel) -> tuple[Checked, list[Problem]]:
    """Check one entry's fields; return the checked entry and its problems. The values of its
    long texts (`Checked.texts`) are the raw entry's values of those fields."""
    lines = dict(raw.lines)
    problems: list[Problem] = []

    def problem(name: str, rule: str, message: str, value: Any = None) -> None:
        line = lines.get(name.split("[", 1)[0])
        problems.append(Problem(raw.origin, name, rule, message, value, line))

    fields = model.fields(raw.content_type)
    known = {f["id"] for f in fields}
    for name in raw.fields:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problem(
                name,
                "unknownField",
                f"{raw.content_type} has no field {name!r}; {hint}its fields are "
                f"{', '.join(sorted(known))}",
            )
    checked: dict[str, Any] = {}
    texts: list[LongText] = []
    refs: list[tuple[Link, str, str, int | None]] = []
    links: list[tuple[str, str, int | None]] = []
    for spec in fields:
        name = spec["id"]
        value = raw.fields.get(name)
        if value in (None, "", [], {}):
            if spec.get("required"):
                problem(name, "required", f"{spec.get('name', name)} is required")
            checked[name] = [] if spec["type"] == "Array" else None
            continue
        before = len(problems)
        result = _check_value(name, spec, value, problem)
        if spec["type"] == "RichText" and len(problems) == before and result is not None:
            text = _long_text(raw.id, name, result)
            texts.append(text)
            first = lines.get(name)
            if isinstance(result, dict):
                refs += [(Link(k, i), name, node, None) for k, i, node in references(result)]
                found = richtext_links(result)
            else:
                found = markdown_links(result)
            for link in found:
                line = first + link.line - 1 if first and link.line else None
                if link.image and is_relative(link.target):
                    image = local_asset_id(content_path(link.target), link.alt, link.title)
                    refs.append((Link(ASSET, image), name, "embedded-asset-block", line))
                    continue
                _check_body_link(link, name, line, problems, raw.origin)
                if is_internal(link.target):
                    links.append((link.target, name, line))
            result = text
        checked[name] = result
    entry = Checked(
        raw.id,
        raw.content_type,
        raw.origin,
        raw.digest,
        checked,
        tuple(texts),
        tuple(refs),
        tuple(links),
        lines,
    )
    return entry, problems


IMAGE_HOSTS = ("https://images.ctfassets.net/", "https://images.eu.ctfassets.net/")


def _check_body_link(
    link: BodyLink, name: str, line: int | None, problems: list[Problem], origin: str
) -> None:
    """What a body link or image may not be, whatever the rest of the site holds."""
    if link.image and not link.target.startswith(IMAGE_HOSTS):
        problems.append(
            Problem(
                origin,
                name,
                "image",
                f"the image {link.target} is not a file of content/ or a Contentful asset: "
                "images from other sites are blocked by the site's security policy",
                link.target,
                line,
            )
        )
    elif not link.image and is_relative(link.target):
        problems.append(
            Problem(
                origin,
                name,
                "link",
                f"the link {link.target} is relative to the page it is on; write the site's "
                "address of the page, starting with a slash (e.g. /blog/what-causes-ptsd/)",
                link.target,
                line,
            )
        )


def _long_text(entry_id: str, name: str, value: Any) -> LongText:
    # Imported here: only entries with bodies need the renderers' word counts.
    from headwater.cache import text_digest
    from headwater.contentful.richtext import richtext_words
    from headwater.markup import count_words

    words = count_words(value) if isinstance(value, str) else richtext_words(value)
    return LongText(entry_id, name, text_digest(value), words)


Report = Callable[..., None]
"""problem(field, rule, message, value=None): record one problem with the entry's field."""


def _check_value(name: str, spec: dict[str, Any], value: Any, problem: Report) -> Any:
    kind = spec["type"]
    if kind == "Array":
        if not isinstance(value, list):
            value = [value] if spec.get("items", {}).get("type") == "Link" else value
        if not isinstance(value, list):
            problem(name, "type", "must be a list", value)
            return []
        items = spec.get("items", {})
        item_spec = {
            "type": items.get("type"),
            "linkType": items.get("linkType"),
            "validations": items.get("validations", []),
        }
        result = [
            _check_value(f"{name}[{i}]", item_spec, item, problem) for i, item in enumerate(value)
        ]
        _apply_validations(name, spec, result, problem)
        return result
    converted = _coerce(kind, spec.get("linkType"), value)
    if converted is _WRONG:
        expected = _EXPECTED.get(kind, kind)
        problem(name, "type", f"must be {expected}", value)
        return None
    limit = {"Symbol": SYMBOL_MAX, "Text": TEXT_MAX}.get(kind)
    if limit and len(converted) > limit:
        problem(
            name,
            "size",
            f"{kind} fields hold at most {limit} characters, this has {len(converted)}",
            converted,
        )
    _apply_validations(name, spec, converted, problem)
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


def _apply_validations(name: str, spec: dict[str, Any], value: Any, problem: Report) -> None:
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
                problem(name, key, message, _shown(value))


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


def _in_group(group: str, mime: str) -> bool:
    test = MIME_GROUPS.get(group)
    return test is not None and test(mime)


def _link_rule(spec: dict[str, Any], key: str) -> list[str] | None:
    for rule in spec.get("validations", []):
        if key in rule:
            return list(rule[key])
    return None


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
