"""Bring a Contentful store up to date and offer it to a build: Sync API deltas for delivery,
paging (or fetching by id) for preview.

Delivery keeps a store (store.py) and asks the Sync API only for what changed since the stored
token; a token the API rejects leads to one initial sync. Preview has no delta sync: a preview
build pages through `/entries` and `/assets`, and the live preview service fetches the entries
a webhook names, by id (`fetch_by_id`).

`/locales` and `/content_types` are asked for only when something says they may have changed:
on an initial sync; when a delta holds an entry of a content type the store does not know;
when the webhook that triggered the build announces a content-type change; and at least once
an hour (META_TTL). A content model that differs from the stored one rebuilds the store, so a
changed field (localized or not) is never read with the old model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from headwater.contentful.client import ContentfulClient, Params, RefusedError, Sleep
from headwater.contentful.convert import (
    Localizer,
    content_type_of,
    has_id,
    text,
    title_of,
    version_of,
)
from headwater.contentful.settings import ContentfulSettings
from headwater.contentful.snapshot import describe, expected_changes, store_snapshot, visible
from headwater.contentful.store import Raw, Row, Store, Writer, new_store, store_path
from headwater.errors import SourceError
from headwater.model import Snapshot

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Told (stage, items so far, 0) after each sync page: the Sync API gives no total."""

PAGE_LIMIT = 1000
"""The most items Contentful returns per page; halved while a page is "too big"."""
INCLUDE_DEPTH = 10
META_TTL = 3600.0
"""Seconds the stored locales and content types are trusted without asking again."""
FRESHNESS_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)
"""Seconds between re-syncs while the CDN catches up with a webhook (about two minutes)."""
ID_BATCH = 100
"""Ids per `sys.id[in]` request (URLs stay well under the CDN's limits)."""


@dataclass(frozen=True)
class PullReport:
    """What one sync changed, for `headwater pull`: labels like 'article “Title”'."""

    description: str
    initial: bool
    created: list[str]
    updated: list[str]
    deleted: list[str]
    requests: int


@dataclass
class _Delta:
    """What one refresh did to the store."""

    initial: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    requests: int = 0


def open_snapshot(
    settings: ContentfulSettings,
    *,
    cache_dir: Path,
    model_types: Collection[str],
    model_digest: str,
    preview: bool = False,
    full: bool = False,
    refresh: bool = True,
    env: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    progress: Progress | None = None,
) -> Snapshot:
    """Bring the store up to date (unless `refresh` is False: the store as it is) and offer it
    to a build. After a webhook (HEADWATER_CHANGES or Netlify's INCOMING_HOOK_BODY in env), sync
    again with backoff until the CDN shows the announced versions (about two minutes at most)."""
    env = os.environ if env is None else env
    expected = expected_changes(env)
    force_meta = any(c.get("kind") == "ContentType" for c in expected)
    delays = iter(FRESHNESS_DELAYS)
    with _session(session) as http:
        while True:
            syncer = _Syncer(settings, cache_dir, model_types, model_digest, preview, http, sleep)
            syncer.progress = progress
            if refresh or syncer.store is None:
                syncer.refresh(full=full, force_meta=force_meta)
            store = syncer.store
            assert store is not None
            pending = [c for c in expected if not visible(c, store)]
            delay = next(delays, None)
            if not pending or delay is None or preview:
                if pending and not preview:
                    log.warning(
                        "Contentful still does not show %s; building with what it serves",
                        ", ".join(describe(c) for c in pending),
                    )
                return store_snapshot(settings, store, model_types, preview)
            # Contentful sends webhooks before its CDN has the change: wait, then sync again.
            log.warning(
                "waiting %.0f s for Contentful's CDN to show %s",
                delay,
                ", ".join(describe(c) for c in pending),
            )
            store.close()
            full = False
            sleep(delay)


def pull(
    settings: ContentfulSettings,
    *,
    cache_dir: Path,
    model_types: Collection[str],
    model_digest: str,
    preview: bool = False,
    full: bool = False,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    progress: Progress | None = None,
) -> PullReport:
    """Sync the store and say what was created, updated and deleted."""
    with _session(session) as http:
        syncer = _Syncer(settings, cache_dir, model_types, model_digest, preview, http, sleep)
        syncer.progress = progress
        delta = syncer.refresh(full=full, force_meta=False)
        if syncer.store is not None:
            syncer.store.close()
    return PullReport(
        description=settings.description + (" (preview)" if preview else ""),
        initial=delta.initial,
        created=sorted(delta.created),
        updated=sorted(delta.updated),
        deleted=sorted(delta.deleted),
        requests=delta.requests,
    )


def fetch_by_id(
    settings: ContentfulSettings,
    *,
    cache_dir: Path,
    model_types: Collection[str],
    model_digest: str,
    entries: Collection[str] = (),
    assets: Collection[str] = (),
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
) -> int:
    """Bring these entries and assets (and what they link to) into the preview store as the
    Preview API shows them now — drafts included; an id it no longer shows (deleted, archived)
    leaves the store. Returns the number of requests made (a handful, whatever the space's size)."""
    with _session(session) as http:
        syncer = _Syncer(settings, cache_dir, model_types, model_digest, True, http, sleep)
        if syncer.store is None:
            syncer.refresh(full=True, force_meta=False)
            if syncer.store is not None:
                syncer.store.close()
            return syncer.client.requests_made
        syncer.fetch_ids(entries, assets)
        if syncer.store is not None:
            syncer.store.close()
        return syncer.client.requests_made


class _Syncer:
    """One API's store of one space environment, and the client that fills it."""

    def __init__(
        self,
        settings: ContentfulSettings,
        cache_dir: Path,
        model_types: Collection[str],
        model_digest: str,
        preview: bool,
        session: requests.Session,
        sleep: Sleep,
    ) -> None:
        api = "preview" if preview else "delivery"
        host, token, variable = settings.api(api)
        self.settings = settings
        self.preview = preview
        self.model_types = set(model_types)
        self.key = {
            "space": settings.space,
            "environment": settings.environment,
            "host": host,
            "api": api,
            "model": model_digest,
            "locale": settings.locale or "",
        }
        self.path = store_path(cache_dir, settings.space, settings.environment, api)
        self.client = ContentfulClient(
            host,
            token,
            variable,
            settings.space,
            settings.environment,
            session,
            sleep,
            deadline=settings.deadline,
        )
        self.store = Store.open(self.path, self.key)
        self.progress: Progress | None = None

    def refresh(self, *, full: bool, force_meta: bool) -> _Delta:
        """Fetch what changed into the store (everything, for an initial sync or a preview)."""
        delta = _Delta()
        store = None if full else self.store
        stale_meta = (
            store is None
            or force_meta
            or time.time() - float(store.meta("checked_at") or 0) > META_TTL
        )
        locales = content_types = None
        if stale_meta:
            locales, content_types = self.metadata()
            if store is not None and (
                store.meta_json("locales") != locales
                or store.meta_json("content_types") != content_types
            ):
                log.info("the space's locales or content types changed: running a full sync")
                store = None
        if store is not None and not self.preview and store.sync_token:
            try:
                self.delta(store, delta, locales, content_types)
            except _RejectedToken as exc:
                log.warning(
                    "Contentful rejected the stored sync token (%s); running an initial sync",
                    exc,
                )
                store = None
        if store is None or self.preview:
            if locales is None or content_types is None:
                locales, content_types = self.metadata()
            self.initial(delta, locales, content_types)
        delta.requests = self.client.requests_made
        log.info(
            "%s: %d entries, %d assets in the %s store (%d requests)",
            self.settings.description,
            self.store.count("Entry") if self.store else 0,
            self.store.count("Asset") if self.store else 0,
            self.key["api"],
            self.client.requests_made,
        )
        return delta

    def metadata(self) -> tuple[list[Raw], list[Raw]]:
        """The space's locales (the wanted locale checked before anything is written) and
        content types."""
        try:
            locales = _collect(self.client, "/locales", {})[0]
        except RefusedError as exc:
            if exc.status == 404:
                raise SourceError(
                    f"Contentful has no space {self.settings.space!r} with environment "
                    f"{self.settings.environment!r} ({exc}); check CONTENTFUL_SPACE_ID and "
                    "CONTENTFUL_ENVIRONMENT"
                ) from None
            raise
        content_types = _collect(self.client, "/content_types", {})[0]
        Localizer(locales, content_types, self.settings.locale)  # ConfigError for a bad locale
        return locales, content_types

    def initial(self, delta: _Delta, locales: list[Raw], content_types: list[Raw]) -> None:
        """Fill a new store from nothing: every page of an initial sync (delivery), or every
        entry and asset the Preview API shows; it replaces the old store once complete."""
        localizer = Localizer(locales, content_types, self.settings.locale)
        delta.initial = True
        if self.store is not None:
            self.store.close()
            self.store = None
        with new_store(self.path, self.key) as store:
            if self.preview:
                entries, includes = _collect(
                    self.client,
                    "/entries",
                    {"include": INCLUDE_DEPTH, "locale": "*", "order": "sys.id"},
                )
                assets, _ = _collect(self.client, "/assets", {"locale": "*", "order": "sys.id"})
                with store.transaction() as writer:
                    for item in [*includes.get("Asset", []), *assets]:
                        _put(writer, item, localizer, delta.created)
                    for item in [*includes.get("Entry", []), *entries]:
                        _put(writer, item, localizer, delta.created)
                    writer.set_meta(sync_token="")
            else:
                # One transaction: the new store replaces the old one only once it is complete,
                # so committing page by page would only add a disk flush per page.
                token = None
                with store.transaction() as writer:
                    for page in self.pages({"initial": "true"}, "initial"):
                        for item in page["items"]:
                            _apply(writer, item, localizer, delta, None)
                        token = page.get("_token")
                    writer.set_meta(sync_token=token or "")
            with store.transaction() as writer:
                writer.set_meta(
                    locales=locales, content_types=content_types, checked_at=str(time.time())
                )
                writer.set_meta(generation=os.urandom(8).hex())
        self.store = store

    def delta(
        self,
        store: Store,
        delta: _Delta,
        locales: list[Raw] | None,
        content_types: list[Raw] | None,
    ) -> None:
        """Apply the changes since the stored token, with the new token, in one transaction."""
        known = {ct["sys"]["id"] for ct in store.meta_json("content_types") or []}
        items: list[Raw] = []
        token = None
        try:
            for page in self.pages({"sync_token": store.sync_token or ""}, "delta"):
                items += page["items"]
                token = page.get("_token")
        except RefusedError as exc:
            if exc.status in (400, 404, 410, 422):
                raise _RejectedToken(f"{exc.status} {exc.error_id or exc}") from None
            raise
        unknown = {
            content_type_of(i)
            for i in items
            if i["sys"].get("type") == "Entry" and content_type_of(i) not in known
        }
        if unknown and locales is None:
            log.info("the delta holds entries of unknown types %s: reading the model", unknown)
            locales, content_types = self.metadata()
            if (locales, content_types) != (
                store.meta_json("locales"),
                store.meta_json("content_types"),
            ):
                raise _RejectedToken("the space's content model changed")
        localizer = Localizer(
            locales or store.meta_json("locales"),
            content_types or store.meta_json("content_types"),
            self.settings.locale,
        )
        if not items and locales is None:
            return  # nothing changed: the old token still covers everything
        with store.transaction() as writer:
            for item in items:
                _apply(writer, item, localizer, delta, store)
            writer.set_meta(sync_token=token or store.sync_token or "")
            if locales is not None:
                writer.set_meta(
                    locales=locales, content_types=content_types, checked_at=str(time.time())
                )
            if items:
                writer.set_meta(generation=os.urandom(8).hex())
        log.info("delta sync: %d item(s)", len(items))

    def pages(self, params: dict[str, str], kind: str) -> Iterator[Raw]:
        """The pages of one sync, each with `_token` the next sync starts from (on the last)."""
        seen: set[str] = set()
        # The next page is asked for as soon as this one names it, so the server (and the
        # network) work on it while the caller stores this one.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-page") as fetcher:
            yield from self._pages(params, kind, seen, fetcher)

    def _pages(
        self, params: dict[str, str], kind: str, seen: set[str], fetcher: ThreadPoolExecutor
    ) -> Iterator[Raw]:
        following = fetcher.submit(self.client.get, "/sync", params)
        items = 0
        while True:
            page = following.result()
            page_items = page.get("items")
            if page.get("sys", {}).get("type") != "Array" or not isinstance(page_items, list):
                raise SourceError(f"Contentful sent a sync page that is not an Array ({kind} sync)")
            items += len(page_items)
            if self.progress is not None:  # the Sync API never says how many are to come
                self.progress(f"{kind} sync", items, 0)
            for item in page_items:
                if not has_id(item):
                    raise SourceError("Contentful sent a sync item without sys.id")
            if isinstance(page.get("nextSyncUrl"), str):
                page["_token"] = _sync_token(page["nextSyncUrl"])
                yield page
                return
            if not isinstance(page.get("nextPageUrl"), str):
                raise SourceError("Contentful sent a sync page without nextPageUrl or nextSyncUrl")
            token = _sync_token(page["nextPageUrl"])
            if token in seen:
                raise SourceError("Contentful's sync pages point back to a page already read")
            seen.add(token)
            # The page URL names Contentful's own host; the configured base URL is followed.
            following = fetcher.submit(self.client.get, "/sync", {"sync_token": token})
            yield page

    def fetch_ids(self, entries: Collection[str], assets: Collection[str]) -> None:
        """The preview service's update: these items (by id) as the Preview API shows them."""
        store = self.store
        assert store is not None
        localizer = Localizer(
            store.meta_json("locales"), store.meta_json("content_types"), self.settings.locale
        )
        found: dict[str, list[Raw]] = {"Entry": [], "Asset": []}
        for kind, path, ids in (("Entry", "/entries", entries), ("Asset", "/assets", assets)):
            wanted = sorted(set(ids))
            for start in range(0, len(wanted), ID_BATCH):
                chunk = wanted[start : start + ID_BATCH]
                params: dict[str, str | int] = {"sys.id[in]": ",".join(chunk), "locale": "*"}
                if kind == "Entry":
                    params["include"] = INCLUDE_DEPTH
                items, includes = _collect(self.client, path, params)
                found[kind] += items
                for more_kind, more in includes.items():
                    found.setdefault(more_kind, []).extend(more)
        delta = _Delta()
        with store.transaction() as writer:
            for kind, ids in (("Entry", entries), ("Asset", assets)):
                shown = {i["sys"]["id"] for i in found.get(kind, [])}
                writer.delete(kind, [i for i in ids if i not in shown])
            for item in [*found.get("Asset", []), *found.get("Entry", [])]:
                _put(writer, item, localizer, delta.created)
            writer.set_meta(generation=os.urandom(8).hex())


class _RejectedToken(Exception):
    """The API will not continue from the stored sync token."""


def _put(writer: Writer, item: Raw, localizer: Localizer, labels: list[str]) -> None:
    row = _row(item, localizer)
    writer.put([row])
    labels.append(_label(row))


def _apply(
    writer: Writer, item: Raw, localizer: Localizer, delta: _Delta, old: Store | None
) -> None:
    """One sync item: an entry or asset to keep, or a deletion."""
    kind = item["sys"].get("type")
    item_id = item["sys"]["id"]
    if kind in ("Entry", "Asset"):
        row = _row(item, localizer)
        before = old.rows(kind, [item_id]) if old is not None else []
        (delta.updated if before else delta.created).append(_label(row))
        writer.put([row])
    elif kind in ("DeletedEntry", "DeletedAsset"):
        gone = kind.removeprefix("Deleted")
        before = old.rows(gone, [item_id]) if old is not None else []
        if before:
            delta.deleted.append(_label(before[0]))
        writer.delete(gone, [item_id])
    else:
        log.debug("ignoring a sync item of type %r", kind)


def _row(item: Raw, localizer: Localizer) -> Row:
    kind = item["sys"]["type"]
    if kind == "Asset":
        title = text(localizer.fields(item, None).get("title")) or item["sys"]["id"]
        return Row(kind, item["sys"]["id"], "", version_of(item), title, item)
    content_type = content_type_of(item)
    title = title_of(localizer.fields(item, content_type), item["sys"]["id"])
    return Row(kind, item["sys"]["id"], content_type, version_of(item), title, item)


def _label(row: Row) -> str:
    return f"asset “{row.label}”" if row.kind == "Asset" else f"{row.content_type} “{row.label}”"


@contextlib.contextmanager
def _session(session: requests.Session | None) -> Iterator[requests.Session]:
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        yield own


def _sync_token(url: str) -> str:
    tokens = parse_qs(urlsplit(url).query).get("sync_token")
    if not tokens or not tokens[0]:
        raise SourceError("Contentful sent a sync URL without a sync_token")
    return tokens[0]


def _collect(
    client: ContentfulClient, path: str, params: Mapping[str, str | int]
) -> tuple[list[Raw], dict[str, list[Raw]]]:
    """Every item of a collection endpoint, page by page; halve the page on "too big"."""
    items: list[Raw] = []
    includes: dict[str, list[Raw]] = {}
    limit, skip = PAGE_LIMIT, 0
    while True:
        query: Params = {**params, "limit": limit, "skip": skip}
        page = client.get_page(path, query)
        if page is None:
            if limit == 1:
                raise SourceError(f"Contentful says even one item of {path} is too big to send")
            limit = max(1, limit // 2)
            log.info("Contentful: the page of %s was too big; asking for %d items", path, limit)
            continue
        page_items = page.get("items")
        if not isinstance(page_items, list):
            raise SourceError(f"Contentful sent a page of {path} without items")
        items += [i for i in page_items if has_id(i)]
        included = page.get("includes")
        for kind, more in (included if isinstance(included, dict) else {}).items():
            if isinstance(more, list):
                includes.setdefault(kind, []).extend(i for i in more if has_id(i))
        skip += len(page_items)
        total = page.get("total")
        if not page_items or not isinstance(total, int) or skip >= total:
            return items, includes
