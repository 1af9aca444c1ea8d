"""Turn a snapshot into validated Content: reuse cached entries, check the rest, resolve links.

Each entry's own fields are checked once per digest (schema.check_entry) and kept in the
content cache; what involves several entries — unique values, links in fields and in RichText
bodies, the one site-settings entry — is checked on every build, over the whole set, because
an edit to one entry can break another. The result is a graph of immutable entries.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from headwater.cache import ContentCache
from headwater.model import ASSET, Asset, Content, Entry, Link, Problem, RawEntry, Snapshot
from headwater.parallel import run_sharded
from headwater.schema import (
    Checked,
    ContentModel,
    LinkField,
    _a,
    _in_group,
    check_entry,
    structure,
)

log = logging.getLogger(__name__)

SETTINGS_TYPE = "siteSettings"
PARALLEL_FROM = 200
"""Check entries in several processes when at least this many are new (a cold build)."""
READ_BATCH = 100
"""Entries a checking process reads at a time: no process holds every raw entry of a cold
build at once (RichText bodies are most of a space's bytes, and a document is large in memory)."""
UrlFor = Callable[[str, str | None, bool], str | None]
"""url_for(content type, slug, is the home page): the entry's URL on the site, if it has one."""


def check_snapshot(
    snapshot: Snapshot, model: ContentModel, *, cache: ContentCache, url_for: UrlFor
) -> tuple[Content | None, list[Problem]]:
    """Validate every entry of the snapshot; return the content graph and every problem."""
    heads = snapshot.heads
    unknown = [h for h in heads.values() if h.content_type not in model.types]
    problems = [
        Problem(
            head.origin,
            "",
            "contentType",
            f"unknown content type {head.content_type!r}; the model has "
            f"{', '.join(sorted(model.types))}",
        )
        for head in unknown
    ]
    wanted = {i: h.digest for i, h in heads.items() if h.content_type in model.types}
    records: dict[str, Checked] = cache.records(wanted)
    todo = [i for i in wanted if i not in records]
    fresh: dict[str, tuple[str, Checked]] = {}
    texts: list[tuple[str, str, Any]] = []
    faulty: set[str] = set()
    """The names an entry with problems of its own is linked by: a link to it that cannot be
    resolved (its slug was the problem) is not a second problem."""
    batches = [todo[start : start + READ_BATCH] for start in range(0, len(todo), READ_BATCH)]
    parent, copy = os.getpid(), cache.copies_texts

    def work(shard: Sequence[list[str]]) -> list[tuple[list[_Read], list[Problem]]]:
        # Each process reads its own batches (unpickling a stored entry costs as much as
        # checking it), and sends back the problems its reads added to the snapshot's.
        done = []
        for batch in shard:
            known = len(snapshot.problems)
            found = _read_and_check(snapshot, model, batch, copy)
            done.append((found, snapshot.problems[known:] if os.getpid() != parent else []))
        return done

    workers = 0 if len(todo) < PARALLEL_FROM else None
    for found_in_batch, read_problems in run_sharded(work, batches, workers=workers):
        snapshot.problems += read_problems
        for entry in found_in_batch:
            records[entry.id] = entry.checked
            problems += entry.problems
            if entry.problems:
                faulty |= {entry.id, PurePosixPath(entry.origin).stem}
            else:
                fresh[entry.id] = (entry.checked.digest, entry.checked)
                texts += entry.texts
    log.info(
        "checked %d entries, %d from the content cache", len(records), len(records) - len(todo)
    )
    cache.store(fresh, texts, gone=(), background=len(fresh) >= PARALLEL_FROM)
    problems = list(snapshot.problems) + problems
    ordered = [records[i] for i in wanted if i in records]
    problems += _check_unique(ordered, model)
    broken = snapshot.broken | faulty
    content, found = link_entries(ordered, snapshot.assets, model, url_for, broken)
    problems += found
    if problems:
        return None, problems
    return content, problems


@dataclass(frozen=True)
class _Read:
    """One entry as a checking process read and checked it."""

    id: str
    origin: str
    checked: Checked
    problems: list[Problem]
    texts: list[tuple[str, str, Any]]


def _read_and_check(
    snapshot: Snapshot, model: ContentModel, ids: list[str], copy: bool
) -> list[_Read]:
    """Read and check some entries; one the reader cannot read is left out (the reader adds
    its problem to the snapshot's)."""
    raws = snapshot.reader.read(ids)
    found = []
    for entry_id in ids:
        raw = raws.get(entry_id)
        if raw is not None:
            checked, problems = check_entry(raw, model)
            texts = _texts(raw, checked, copy)
            found.append(_Read(raw.id, raw.origin, checked, problems, texts))
    return found


def _texts(raw: RawEntry, checked: Checked, copy: bool) -> list[tuple[str, str, Any]]:
    """What the content cache keeps of an entry's long texts: (entry id, digest, value) each,
    the value None unless it `copy`s them (the source keeps them otherwise)."""
    return [(raw.id, t.digest, raw.fields[t.field] if copy else None) for t in checked.texts]


def link_entries(
    records: list[Checked],
    assets: Mapping[str, Asset],
    model: ContentModel,
    url_for: UrlFor,
    broken: frozenset[str] = frozenset(),
) -> tuple[Content | None, list[Problem]]:
    """Resolve every link into an immutable entry graph; report links that lead nowhere
    (except to what the source could not read: that is reported already)."""
    catalog = {r.id: (r.content_type, r.origin, _slug(r)) for r in records}
    resolver = _Resolver(catalog, assets, broken)
    problems = resolver.problems
    settings = [r for r in records if r.content_type == SETTINGS_TYPE]
    if SETTINGS_TYPE in model.types and len(settings) != 1:
        problems.append(
            Problem(
                SETTINGS_TYPE,
                "",
                "singleton",
                f"there must be exactly one {SETTINGS_TYPE} entry, found {len(settings)}",
            )
        )
    home_id = None
    if len(settings) == 1:
        link = settings[0].fields.get("homePage")
        if isinstance(link, Link):
            home_id = next(iter(resolver.candidates(link)), None)
    entries = {
        r.id: Entry(
            r.id,
            r.content_type,
            r.origin,
            r.digest,
            url_for(r.content_type, _slug(r), r.id == home_id),
        )
        for r in records
    }
    resolver.entries = entries
    link_fields = {t: model.link_fields(t) for t in model.types}
    for record in records:
        fields, refs = resolver.resolve_all(record, link_fields[record.content_type])
        entries[record.id]._complete(fields, refs, tuple(t for t, _, _ in record.links))
    if problems or len(settings) != 1:
        return None, problems
    content = Content(
        tuple(entries.values()), assets, entries[settings[0].id], {r.id: r for r in records}
    )
    return content, problems


def _slug(record: Checked) -> str | None:
    slug = record.fields.get("slug")
    return slug if isinstance(slug, str) else None


Catalog = Mapping[str, tuple[str, str, str | None]]
"""Every entry by id: (content type, origin, slug) — what links are checked against."""


class _Resolver:
    """Finds what links point at, and says what is wrong with each link that fails."""

    def __init__(
        self, catalog: Catalog, assets: Mapping[str, Asset], broken: frozenset[str]
    ) -> None:
        self.catalog = catalog
        self.broken = broken
        self.by_slug: dict[str, list[str]] = defaultdict(list)
        for entry_id, (_, _, slug) in catalog.items():
            if slug is not None:
                self.by_slug[slug].append(entry_id)
        self.assets = assets
        self.entries: Mapping[str, Entry] = {}
        self.problems: list[Problem] = []

    def resolve_all(
        self, record: Checked, link_fields: list[LinkField]
    ) -> tuple[dict[str, Any], tuple[Entry | Asset, ...]]:
        """A record's fields with their links resolved, and what its bodies reference."""
        fields = dict(record.fields)
        for spec in link_fields:
            value = fields[spec.name]
            if spec.is_array:
                resolved = [
                    self.resolve(record, f"{spec.name}[{i}]", link, spec)
                    for i, link in enumerate(value)
                    if isinstance(link, Link)
                ]
                fields[spec.name] = [r for r in resolved if r is not None]
            else:
                fields[spec.name] = (
                    self.resolve(record, spec.name, value, spec)
                    if isinstance(value, Link)
                    else None
                )
        refs = [
            self.reference(record, link, name, node, line) for link, name, node, line in record.refs
        ]
        return fields, tuple(r for r in refs if r is not None)

    def candidates(self, link: Link) -> list[str]:
        if link.by_slug:
            return self.by_slug.get(link.key, [])
        return [link.key] if link.key in self.catalog else []

    def resolve(
        self, record: Checked, name: str, link: Link, spec: LinkField
    ) -> Entry | Asset | None:
        if link.link_type == ASSET:
            asset = self.asset(record, name, link)
            groups = spec.mime_groups or []
            if asset is not None and groups and not any(_in_group(g, asset.mime) for g in groups):
                self.problems.append(
                    record.problem(
                        name,
                        "linkMimetypeGroup",
                        f"must be a file of type {' or '.join(groups)}, not {asset.mime}",
                        asset.id,
                    )
                )
            return asset
        candidates = self.candidates(link)
        allowed = spec.content_types
        wanted = [c for c in candidates if allowed is None or self.catalog[c][0] in allowed]
        kinds = " or ".join(allowed or ["entry"])
        if wanted:
            return self.entries[wanted[0]]
        if link.key in self.broken:
            return None
        if candidates:
            found = ", ".join(f"{self.catalog[c][0]} {self.catalog[c][1]}" for c in candidates)
            self.problems.append(
                record.problem(
                    name,
                    "linkContentType",
                    f"must link to {_a(kinds)}, but {link.key!r} is {found}",
                    link.key,
                )
            )
        else:
            self.problems.append(
                record.problem(name, "link", f"links to {_a(kinds)} that does not exist", link.key)
            )
        return None

    def asset(
        self, record: Checked, name: str, link: Link, line: int | None = None
    ) -> Asset | None:
        asset = self.assets.get(link.key)
        if asset is None:
            if link.key not in self.broken:
                self.problems.append(
                    record.problem(name, "link", "links to a missing asset", link.key, line)
                )
            return None
        if asset.mime.startswith("image/") and not asset.alt:
            self.problems.append(
                record.problem(
                    name,
                    "altText",
                    "the image needs alt text describing it for people who cannot see it",
                    asset.id,
                    line,
                )
            )
        return asset

    def reference(
        self, record: Checked, link: Link, name: str, node: str, line: int | None = None
    ) -> Entry | Asset | None:
        """What a body embeds or links to; a missing one names both entries."""
        if link.link_type == ASSET:
            if node.startswith("embedded"):
                return self.asset(record, name, link, line)
            found = self.assets.get(link.key)
            if found is None:
                self.problems.append(
                    record.problem(
                        name, "link", f"{_verb(node)} an asset that does not exist", link.key, line
                    )
                )
            return found
        entry = self.entries.get(link.key)
        if entry is None:
            self.problems.append(
                record.problem(
                    name,
                    "link",
                    f"{_verb(node)} an entry that does not exist or is not published "
                    f"(entry id {link.key})",
                    link.key,
                )
            )
        return entry


def _verb(node: str) -> str:
    return "links to" if node.endswith("hyperlink") else "embeds"


def _check_unique(records: Iterable[Checked], model: ContentModel) -> list[Problem]:
    problems: list[Problem] = []
    by_type: dict[str, list[Checked]] = defaultdict(list)
    for record in records:
        by_type[record.content_type].append(record)
    for type_id, holders_of_type in by_type.items():
        for name in model.unique_fields(type_id):
            seen: dict[Any, list[Checked]] = defaultdict(list)
            for record in holders_of_type:
                value = record.fields.get(name)
                if value is not None:
                    seen[value].append(record)
            for value, holders in seen.items():
                if len(holders) < 2:
                    continue
                for record in holders:
                    others = ", ".join(o.origin for o in holders if o is not record)
                    problems.append(
                        record.problem(
                            name,
                            "unique",
                            f"must be unique among {type_id} entries; also used by {others}",
                            value,
                        )
                    )
    return problems


@dataclass(frozen=True)
class Changes:
    """A build that changes only what some entries say, not the site's map: the changed
    entries, checked, and every entry on demand."""

    changed: frozenset[str]
    records: Mapping[str, Checked]
    """The changed entries, checked."""
    entries: Mapping[str, Entry]
    """Every entry by id, each read and linked on first use."""
    settings: Entry
    problems: list[Problem]


class LazyEntries(Mapping[str, Entry]):
    """Every entry of the last build by id, as an immutable Entry whose fields are read from
    the content cache (or the records checked just now) and linked on first use."""

    def __init__(
        self,
        catalog: Mapping[str, tuple[str, str, str | None, str, str | None]],
        records: Callable[[str, str], Checked],
        resolver: _Resolver,
        model: ContentModel,
    ) -> None:
        self._catalog = catalog
        """id → (content type, origin, slug, digest, url)."""
        self._records = records
        self._resolver = resolver
        self._model = model
        self._made: dict[str, Entry] = {}

    def __getitem__(self, entry_id: str) -> Entry:
        entry = self._made.get(entry_id)
        if entry is None:
            content_type, origin, _, digest, url = self._catalog[entry_id]
            entry = Entry(entry_id, content_type, origin, digest, url, load=self._load)
            self._made[entry_id] = entry
        return entry

    def _load(self, entry: Entry) -> None:
        record = self._records(entry.id, entry.digest)
        fields, refs = self._resolver.resolve_all(
            record, self._model.link_fields(record.content_type)
        )
        entry._complete(fields, refs, tuple(t for t, _, _ in record.links))

    def __iter__(self) -> Iterator[str]:
        return iter(self._catalog)

    def __len__(self) -> int:
        return len(self._catalog)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._catalog


def check_changes(
    snapshot: Snapshot,
    model: ContentModel,
    *,
    cache: ContentCache,
    before: Mapping[str, Any],
) -> Changes | None:
    """Check only the entries whose digest changed since the build `before` describes (id →
    an entry with digest, content_type, url, origin, slug and structure), when that leaves the
    site's map as it was; None when it does not (an entry added, removed or moved in a list,
    the site settings edited): then the whole snapshot must be checked and planned."""
    heads = snapshot.heads
    if heads.keys() != before.keys():
        return None
    changed = [i for i, head in heads.items() if head.digest != before[i].digest]
    if any(before[i].url is None for i in changed):
        # Entries without pages of their own (site settings, redirects) shape the whole site.
        return None
    raws = snapshot.reader.read(changed)
    problems: list[Problem] = list(snapshot.problems)
    fresh: dict[str, Checked] = {}
    for entry_id in changed:
        raw = raws.get(entry_id)
        if raw is None or raw.content_type != before[entry_id].content_type:
            return None
        checked, found = check_entry(raw, model)
        if found:
            problems += found
        elif structure(checked, model) != before[entry_id].structure:
            return None
        fresh[entry_id] = checked
    catalog = {
        i: (e.content_type, e.origin, e.slug, heads[i].digest, e.url) for i, e in before.items()
    }
    resolver = _Resolver(
        {i: (t, o, s) for i, (t, o, s, _, _) in catalog.items()}, snapshot.assets, snapshot.broken
    )

    def record(entry_id: str, digest: str) -> Checked:
        found = fresh.get(entry_id) or cache.record(entry_id, digest)
        if found is None:  # not cached (a cache made by an interrupted build): check it again
            raw = snapshot.reader.read([entry_id]).get(entry_id)
            if raw is None:
                raise LookupError(f"{entry_id} can no longer be read")
            found, _ = check_entry(raw, model)
            texts = _texts(raw, found, cache.copies_texts)
            cache.store({entry_id: (found.digest, found)}, texts, gone=())
        return found

    entries = LazyEntries(catalog, record, resolver, model)
    resolver.entries = entries
    for checked in fresh.values():
        resolver.resolve_all(checked, model.link_fields(checked.content_type))
    problems += resolver.problems
    if not problems:
        copy = cache.copies_texts
        texts = [text for i, c in fresh.items() for text in _texts(raws[i], c, copy)]
        cache.store({i: (c.digest, c) for i, c in fresh.items()}, texts, gone=())
    settings = next(i for i, e in before.items() if e.content_type == SETTINGS_TYPE)
    log.info("checked %d changed entries of %d", len(changed), len(heads))
    return Changes(frozenset(changed), fresh, entries, entries[settings], problems)
