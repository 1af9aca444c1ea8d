"""Plain data shared by every stage: raw and validated entries, assets, snapshots, problems."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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


@dataclass(frozen=True)
class Asset:
    """A file the content refers to: an image in `content/` or a CMS asset."""

    id: str
    title: str
    alt: str
    mime: str
    source: str
    """Where the bytes are: a path for local files, a URL for CMS assets."""
    url: str
    """Where the site shows it: a content-hashed path below /media/, or the CMS's URL."""
    width: int | None = None
    height: int | None = None
    size: int | None = None

    @property
    def is_local(self) -> bool:
        return not self.source.startswith(("http://", "https://"))


def local_asset_id(file: str, alt: str, title: str | None) -> str:
    """The id of an image of the local snapshot: its file, and its alt text and title when
    they are given (each distinct use is an asset of its own)."""
    stem = file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if alt == "" and title in (None, stem):
        return file
    return f"{file}#{alt}|{title or stem}"


@dataclass(frozen=True)
class LongText:
    """A RichText field's value, kept out of memory until a page renders it.

    Bodies are most of a site's bytes; validation records what pages need of them (length,
    the entries and assets they reference) and the value itself is read back by `digest`.
    """

    entry_id: str
    field: str
    digest: str
    words: int


RESERVED_FIELD_IDS = frozenset(
    {"id", "content_type", "fields", "origin", "url", "digest", "label", "refs", "kind"}
)
"""Entry's own attributes, which no content type may use as a field id."""


class Entry:
    """One validated entry, links resolved: templates read its fields as attributes
    (`article.title`, `article.author.name`).

    Immutable once the schema stage has built it: later stages compute views into new values
    instead of writing into an entry, so a cached entry can be shared by any number of builds.
    """

    id: str
    content_type: str
    origin: str
    digest: str
    url: str | None
    fields: Mapping[str, Any]
    refs: tuple[Entry | Asset, ...]
    _linked: tuple[Entry | Asset, ...]
    """Everything it links to, in its fields and its bodies (for fingerprints)."""
    _links: tuple[str, ...]
    """The site addresses its bodies link to (for fingerprints: a page can move)."""

    def __init__(
        self,
        id: str,
        content_type: str,
        origin: str,
        digest: str,
        url: str | None,
        load: Callable[[Entry], None] | None = None,
    ) -> None:
        values = self.__dict__
        values.update(id=id, content_type=content_type, origin=origin, digest=digest, url=url)
        if load is None:
            values.update(fields=MappingProxyType({}), refs=(), _linked=(), _links=())
        else:
            # A lazy entry: its fields are read (and its links resolved) on first use.
            values["_load"] = load

    def _complete(
        self,
        fields: dict[str, Any],
        refs: tuple[Entry | Asset, ...],
        links: tuple[str, ...] = (),
    ) -> None:
        """Set the resolved fields once, while the schema stage builds the entry graph
        (entries may link to each other in cycles, so they exist before their fields).
        `links` are the site addresses its bodies link to."""
        values = self.__dict__
        values["fields"] = MappingProxyType(fields)
        values["refs"] = refs
        values["_links"] = links
        linked: list[Entry | Asset] = []
        for value in fields.values():
            if type(value) is list:
                linked += [v for v in value if type(v) is Entry or type(v) is Asset]
            elif type(value) is Entry or type(value) is Asset:
                linked.append(value)
        values["_linked"] = (*linked, *refs)
        # Plain attributes: Python and Jinja read them far faster than through __getattr__.
        values.update(fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self!r} is immutable once validated (setting {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self!r} is immutable once validated (deleting {name})")

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not attributes: a lazy entry's fields before their
        # first use, and names that are no field at all.
        load = self.__dict__.pop("_load", None)
        if load is not None:
            load(self)
            return getattr(self, name)
        raise AttributeError(f"{self.content_type} has no field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (to forked workers' results, caches) as a plain object: __setattr__ refuses.
        return (_rebuild_entry, (self.__dict__.copy(),))

    @property
    def label(self) -> str:
        """The entry's name for messages: its title or name, else its id."""
        return entry_label(self.fields, self.id)

    def __repr__(self) -> str:
        return f"Entry({self.content_type}:{self.id})"


def _rebuild_entry(values: dict[str, Any]) -> Entry:
    entry = Entry.__new__(Entry)
    values["fields"] = MappingProxyType(dict(values["fields"]))
    entry.__dict__.update(values)
    return entry


def entry_label(fields: Mapping[str, Any], fallback: str) -> str:
    """An entry's name: its title, name or site name, else fallback."""
    for key in ("title", "name", "siteName"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback


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
    lines: Mapping[str, int] = field(default_factory=dict)
    """The line each field starts on, where the source is a text file."""


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
        """The raw entries with these ids; an id that cannot be read is left out and its
        problem added to the snapshot's problems."""
        ...


class TextSource(Protocol):
    """Reads long texts back from where the source keeps them, so no copy is needed."""

    def text(self, entry_id: str, field: str, digest: str) -> Any:
        """The value of one entry's field, if its `LongText.digest` is still `digest`;
        KeyError when the source no longer holds that value."""
        ...


@dataclass
class Snapshot:
    """What a source offers a build: a head for every entry, fields on demand, every asset."""

    description: str
    heads: dict[str, EntryHead]
    """Every entry the source holds, by id."""
    reader: EntryReader
    assets: dict[str, Asset]
    """Every asset, by id, with `url` already its published address."""
    problems: list[Problem] = field(default_factory=list)
    """What the source met while reading (a file that is not YAML, an asset without a file)."""
    broken: frozenset[str] = frozenset()
    """Ids and slugs of entries, and ids of assets, that could not be read (and are among the
    problems already): links to them are not reported a second time."""
    signature: str | None = None
    """Changes whenever anything the source read changes (file timestamps, a sync token);
    None when the source cannot tell. Equal signatures let a build stop before checking."""
    texts: TextSource | None = None
    """Where the long texts can be read back one by one while pages render (a store on disk);
    None when the source cannot, and the content cache keeps a copy of each."""


class MemoryReader:
    """An EntryReader over entries already in memory (tests, small sources)."""

    def __init__(self, entries: Collection[RawEntry]) -> None:
        self._entries = {e.id: e for e in entries}

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        return {i: self._entries[i] for i in ids if i in self._entries}


def snapshot_of(
    entries: Collection[RawEntry],
    assets: Mapping[str, Asset] | None = None,
    description: str = "entries in memory",
) -> Snapshot:
    """A Snapshot of entries in memory."""
    heads = {e.id: EntryHead(e.id, e.content_type, e.digest, e.origin) for e in entries}
    return Snapshot(description, heads, MemoryReader(entries), dict(assets or {}))


@dataclass(frozen=True)
class Problem:
    """One way the content breaks the model: where, which field, which rule, what value."""

    origin: str
    field: str
    rule: str
    message: str
    value: Any = None
    line: int | None = None
    """The line of the file the field is on, for local files."""

    def __str__(self) -> str:
        origin = f"{self.origin}:{self.line}" if self.line else self.origin
        where = f"{origin}: {self.field}" if self.field else origin
        text = f"{where}: [{self.rule}] {self.message}"
        if self.value is not None:
            text += f" (got {short_repr(self.value)})"
        return text


def short_repr(value: Any, limit: int = 80) -> str:
    """A one-line preview of a value for error messages."""
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Content:
    """Validated content: immutable entries with their links resolved, and every asset."""

    entries: tuple[Entry, ...]
    assets: Mapping[str, Asset]
    settings: Entry
    records: Mapping[str, Any] = field(default_factory=dict)
    """The checked records the entries were made from, by id (schema.Checked)."""

    def of_type(self, content_type: str) -> list[Entry]:
        return [e for e in self.entries if e.content_type == content_type]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)
