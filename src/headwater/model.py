"""Plain data shared by every stage: entries, assets, the snapshot and content problems."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Contentful stores a link as {"sys": {"type": "Link", "linkType": ..., "id": ...}}; the local
# snapshot names entries by slug. Both become a Link until the schema stage resolves it.
ENTRY = "Entry"
ASSET = "Asset"


@dataclass(frozen=True)
class Link:
    """An unresolved reference to an entry or asset: by id, or by slug in the local snapshot."""

    link_type: str
    key: str
    by_slug: bool = False


@dataclass
class Asset:
    """A file the content refers to: an image in `content/` or a CMS asset."""

    id: str
    title: str
    alt: str
    mime: str
    source: str
    """Where the bytes are: a path for local files, a URL for CMS assets."""
    url: str = ""
    """Where the site publishes it; set by the build."""
    width: int | None = None
    height: int | None = None
    size: int | None = None


RESERVED_FIELD_IDS = frozenset(
    {"id", "content_type", "fields", "origin", "url", "digest", "label", "expose"}
)
"""Entry's own attributes, which no content type may use as a field id."""


@dataclass(eq=False)
class Entry:
    """One CMS entry. Templates read its fields as attributes (`article.title`)."""

    id: str
    content_type: str
    fields: dict[str, Any]
    origin: str
    """Where an editor finds it: a file path for local content, a URL for the CMS."""
    url: str | None = None
    """The entry's page on the site, when it has one; set when the site is planned."""
    digest: str = ""
    """A hash of everything the source read for this entry, when the source has one."""

    def expose(self) -> None:
        """Make the fields plain attributes, which Python and Jinja read far faster than
        through __getattr__; done once the fields are final (validated, links resolved)."""
        self.__dict__.update(self.fields)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields")
        if fields is not None and name in fields:
            return fields[name]
        raise AttributeError(name)

    @property
    def label(self) -> str:
        """The entry's name for messages: its title or name, else its id."""
        for key in ("title", "name", "siteName"):
            value = self.fields.get(key)
            if isinstance(value, str) and value:
                return value
        return self.id

    def __repr__(self) -> str:
        return f"Entry({self.content_type}:{self.id})"


@dataclass(frozen=True)
class RawEntry:
    """One entry as a source read it, before validation: field values in one locale, links
    as Link objects (by id, or by slug in the local snapshot)."""

    id: str
    content_type: str
    fields: Mapping[str, Any]
    origin: str
    """Where an editor finds it: a file path for local content; for the CMS its type, title
    and web-app URL, e.g. 'article “What Causes PTSD?” (https://app.contentful.com/…)'."""
    digest: str
    """Changes whenever anything the source read for this entry changes (file bytes; CMS
    revision and locale). Validated entries are cached by it."""


@dataclass(frozen=True)
class EntryHead:
    """What a source knows of an entry without reading its fields: enough to tell whether the
    validated copy from the last build can be reused."""

    id: str
    content_type: str
    digest: str
    origin: str


class EntryReader(Protocol):
    """Reads entries' fields on demand, so a build reads only entries whose digest changed."""

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        """The raw entries with these ids (every id of `heads`); problems go to the snapshot."""
        ...


@dataclass
class SourceSnapshot:
    """What a source offers a build: a head for every entry, fields on demand, every asset."""

    description: str
    heads: dict[str, EntryHead]
    """Every entry the source holds, by id."""
    reader: EntryReader
    assets: dict[str, Asset]
    """Every asset, by id, with `url` already its published address."""
    problems: list[Problem] = field(default_factory=list)
    """What the source met while reading (a file that is not YAML, an asset without a file)."""


@dataclass
class Snapshot:
    """Everything a source read: entries, assets, and problems it met while reading."""

    entries: list[Entry] = field(default_factory=list)
    assets: dict[str, Asset] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class Problem:
    """One way the content breaks the model: where, which field, which rule, what value."""

    origin: str
    field: str
    rule: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        where = f"{self.origin}: {self.field}" if self.field else self.origin
        text = f"{where}: [{self.rule}] {self.message}"
        if self.value is not None:
            text += f" (got {short_repr(self.value)})"
        return text


def short_repr(value: Any, limit: int = 80) -> str:
    """A one-line preview of a value for error messages."""
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Content:
    """Validated content: entries with their links resolved to Entry and Asset objects."""

    entries: list[Entry]
    assets: dict[str, Asset]
    settings: Entry

    def of_type(self, content_type: str) -> list[Entry]:
        return [e for e in self.entries if e.content_type == content_type]
