"""Read a Contentful space into a Snapshot: Sync API deltas for delivery, paging for preview.

Delivery keeps a local store (see contentful_store.py) and asks the Sync API only for what
changed since the stored token. Preview has no trustworthy delta sync, so it pages through
`/entries` and `/assets` in full every time, into a store of its own. Both read `/locales` and
`/content_types`, and pick each field's value in one locale with Contentful's fallback chain.
Links stay as Contentful link objects; the schema stage resolves them by id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from headwater.errors import ConfigError, SourceError
from headwater.model import Asset, Problem, RawEntry, Snapshot, snapshot_of
from headwater.sources.contentful_client import ContentfulClient, Params, Sleep
from headwater.sources.contentful_store import (
    Raw,
    StoreState,
    read_store,
    store_path,
    write_store,
)

log = logging.getLogger(__name__)

DELIVERY_HOST = "cdn.contentful.com"
PREVIEW_HOST = "preview.contentful.com"
WEB_APP = "https://app.contentful.com"
PAGE_LIMIT = 1000
"""The most items Contentful returns per page; halved while a page is "too big"."""
INCLUDE_DEPTH = 10
TITLE_FIELDS = ("title", "name", "siteName")


@dataclass(frozen=True)
class ContentfulSettings:
    """Which space and environment to read, with which tokens, from which hosts."""

    space: str
    environment: str = "master"
    delivery_token: str | None = field(default=None, repr=False)
    preview_token: str | None = field(default=None, repr=False)
    host: str = f"https://{DELIVERY_HOST}"
    preview_host: str = f"https://{PREVIEW_HOST}"
    locale: str | None = None
    """The locale to read; None means the space's default locale."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, preview: bool = False) -> ContentfulSettings:
        """Settings from CONTENTFUL_* variables; ConfigError names a missing or bad one."""
        space = env.get("CONTENTFUL_SPACE_ID", "").strip()
        if not space:
            raise ConfigError("CONTENTFUL_SPACE_ID is not set: the id of the Contentful space")
        needed = "CONTENTFUL_PREVIEW_TOKEN" if preview else "CONTENTFUL_DELIVERY_TOKEN"
        if not env.get(needed, "").strip():
            raise ConfigError(f"{needed} is not set: an API key of space {space!r}")
        return cls(
            space=space,
            environment=env.get("CONTENTFUL_ENVIRONMENT", "").strip() or "master",
            delivery_token=env.get("CONTENTFUL_DELIVERY_TOKEN", "").strip() or None,
            preview_token=env.get("CONTENTFUL_PREVIEW_TOKEN", "").strip() or None,
            host=base_url(env.get("CONTENTFUL_HOST", ""), DELIVERY_HOST, "CONTENTFUL_HOST"),
            preview_host=base_url(
                env.get("CONTENTFUL_PREVIEW_HOST", ""), PREVIEW_HOST, "CONTENTFUL_PREVIEW_HOST"
            ),
            locale=env.get("CONTENTFUL_LOCALE", "").strip() or None,
        )

    def api(self, preview: bool) -> tuple[str, str, str]:
        """(base URL, token, the token's variable) of the delivery or the preview API."""
        variable = "CONTENTFUL_PREVIEW_TOKEN" if preview else "CONTENTFUL_DELIVERY_TOKEN"
        host = self.preview_host if preview else self.host
        token = self.preview_token if preview else self.delivery_token
        if not token:
            raise ConfigError(f"{variable} is not set: an API key of space {self.space!r}")
        return host, token, variable

    @property
    def description(self) -> str:
        return f"Contentful space {self.space}/{self.environment}"


def base_url(value: str, default_host: str, variable: str) -> str:
    """A host name means https://host; a value with a scheme is a base URL used as given."""
    value = value.strip() or default_host
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"{variable} must be a host name or an http(s) base URL, not {value!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{variable} must not carry credentials; tokens go in *_TOKEN")
    return value.rstrip("/")


@dataclass(frozen=True)
class PullReport:
    """What one sync changed, for `headwater pull`: labels like 'article “Title”'."""

    description: str
    initial: bool
    created: list[str]
    updated: list[str]
    deleted: list[str]
    requests: int


def load_contentful(
    settings: ContentfulSettings,
    *,
    cache_dir: Path,
    model_types: set[str],
    preview: bool = False,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    full: bool = False,
    model_digest: str | None = None,
) -> Snapshot:
    """Bring the store up to date and read it into a Snapshot.

    cache_dir is the project's `.cache/headwater`; model_types the content type ids in
    `cms_schema/`. `full` ignores the stored sync token. `model_digest` (default: a digest of
    model_types) is part of the store's key: when it changes, the next load syncs from scratch.
    """
    state, _, _ = _refresh(
        settings, cache_dir, model_types, preview, session, sleep, full, model_digest
    )
    return _snapshot(settings, state, model_types, preview)


def pull_contentful(
    settings: ContentfulSettings,
    *,
    cache_dir: Path,
    model_types: set[str],
    preview: bool = False,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    full: bool = False,
    model_digest: str | None = None,
) -> PullReport:
    """Sync the store like load_contentful and say what was created, updated and deleted."""
    new, old, requests_made = _refresh(
        settings, cache_dir, model_types, preview, session, sleep, full, model_digest
    )
    before = old or StoreState(key=new.key)
    names = _Localizer(new, settings.locale)
    created: list[str] = []
    updated: list[str] = []
    deleted: list[str] = []
    for old_items, new_items in ((before.entries, new.entries), (before.assets, new.assets)):
        for item_id, item in new_items.items():
            previous = old_items.get(item_id)
            if previous is None:
                created.append(names.label(item))
            elif _version(previous) != _version(item):
                updated.append(names.label(item))
        deleted += [names.label(item) for i, item in old_items.items() if i not in new_items]
    return PullReport(
        description=settings.description + (" (preview)" if preview else ""),
        initial=old is None or full or preview,
        created=sorted(created),
        updated=sorted(updated),
        deleted=sorted(deleted),
        requests=requests_made,
    )


def _refresh(
    settings: ContentfulSettings,
    cache_dir: Path,
    model_types: set[str],
    preview: bool,
    session: requests.Session | None,
    sleep: Sleep,
    full: bool,
    model_digest: str | None,
) -> tuple[StoreState, StoreState | None, int]:
    """Fetch what changed and save the store; return (new state, previous state, requests)."""
    host, token, variable = settings.api(preview)
    api = "preview" if preview else "delivery"
    digest = model_digest or hashlib.sha256("\n".join(sorted(model_types)).encode()).hexdigest()
    key = {
        "space": settings.space,
        "environment": settings.environment,
        "host": host,
        "api": api,
        "model": digest,
    }
    path = store_path(cache_dir, settings.space, settings.environment, api)
    old = read_store(path, key)
    with _session(session) as http:
        client = ContentfulClient(
            host, token, variable, settings.space, settings.environment, http, sleep
        )
        state = StoreState(
            key=key,
            locales=_collect(client, "/locales", {})[0],
            content_types=_collect(client, "/content_types", {})[0],
        )
        if preview:
            _fetch_drafts(client, state)
            changed = True
        else:
            changed = _sync(client, state, None if full or old is None else old) > 0
    metadata = (state.locales, state.content_types)
    if old is not None and not changed and (old.locales, old.content_types) == metadata:
        # The old token still covers everything: an empty delta need not rewrite the store.
        state = old
    else:
        write_store(path, state)
    log.info(
        "%s: %d entries, %d assets in the %s store (%d requests)",
        settings.description,
        len(state.entries),
        len(state.assets),
        api,
        client.requests_made,
    )
    return state, old, client.requests_made


@contextlib.contextmanager
def _session(session: requests.Session | None) -> Iterator[requests.Session]:
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        yield own


def _sync(client: ContentfulClient, state: StoreState, old: StoreState | None) -> int:
    """Apply one sync (initial without old, else a delta from its token) to state.

    Returns the number of items Contentful sent; an initial sync always counts as a change.
    """
    if old is not None and old.sync_token:
        state.entries, state.assets = dict(old.entries), dict(old.assets)
        params: dict[str, str] = {"sync_token": old.sync_token}
    else:
        params = {"initial": "true"}
    kind = "initial" if "initial" in params else "delta"
    seen: set[str] = set()
    pages = items = 0
    while True:
        page = client.get("/sync", params)
        pages += 1
        page_items = page.get("items")
        if page.get("sys", {}).get("type") != "Array" or not isinstance(page_items, list):
            raise SourceError(f"Contentful sent a sync page that is not an Array ({kind} sync)")
        for item in page_items:
            _apply(item, state)
        items += len(page_items)
        if isinstance(page.get("nextSyncUrl"), str):
            state.sync_token = _sync_token(page["nextSyncUrl"])
            break
        if not isinstance(page.get("nextPageUrl"), str):
            raise SourceError("Contentful sent a sync page without nextPageUrl or nextSyncUrl")
        token = _sync_token(page["nextPageUrl"])
        if token in seen:
            raise SourceError("Contentful's sync pages point back to a page already read")
        seen.add(token)
        # The page URL names Contentful's own host; the configured base URL is followed instead.
        params = {"sync_token": token}
    log.info("%s sync: %d page(s), %d item(s)", kind, pages, items)
    return items if kind == "delta" else max(items, 1)


def _apply(item: Any, state: StoreState) -> None:
    sys = item.get("sys") if isinstance(item, dict) else None
    if not isinstance(sys, dict) or not isinstance(sys.get("id"), str):
        raise SourceError("Contentful sent a sync item without sys.id")
    kind, item_id = sys.get("type"), sys["id"]
    if kind == "Entry":
        state.entries[item_id] = item
    elif kind == "Asset":
        state.assets[item_id] = item
    elif kind == "DeletedEntry":
        state.entries.pop(item_id, None)
    elif kind == "DeletedAsset":
        state.assets.pop(item_id, None)
    else:
        log.debug("ignoring a sync item of type %r", kind)


def _sync_token(url: str) -> str:
    tokens = parse_qs(urlsplit(url).query).get("sync_token")
    if not tokens or not tokens[0]:
        raise SourceError("Contentful sent a sync URL without a sync_token")
    return tokens[0]


def _fetch_drafts(client: ContentfulClient, state: StoreState) -> None:
    """Every entry and asset the Preview API shows, drafts included, in all locales."""
    entries, includes = _collect(
        client, "/entries", {"include": INCLUDE_DEPTH, "locale": "*", "order": "sys.id"}
    )
    assets, _ = _collect(client, "/assets", {"locale": "*", "order": "sys.id"})
    for item in [*includes.get("Asset", []), *assets]:
        state.assets[item["sys"]["id"]] = item
    for item in [*includes.get("Entry", []), *entries]:
        state.entries[item["sys"]["id"]] = item


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
        items += [i for i in page_items if _has_id(i)]
        included = page.get("includes")
        for kind, more in (included if isinstance(included, dict) else {}).items():
            if isinstance(more, list):
                includes.setdefault(kind, []).extend(i for i in more if _has_id(i))
        skip += len(page_items)
        total = page.get("total")
        if not page_items or not isinstance(total, int) or skip >= total:
            return items, includes


class _Localizer:
    """Picks each field's value in one locale, following fallbackCode while it is absent."""

    def __init__(self, state: StoreState, wanted: str | None) -> None:
        codes = {loc["code"]: loc for loc in state.locales if isinstance(loc.get("code"), str)}
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
            for ct in state.content_types
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
        sys = raw["sys"]
        if sys.get("type") == "Asset":
            fields = self.fields(raw, None)
            return f"asset “{_text(fields.get('title')) or sys['id']}”"
        content_type = _content_type(raw)
        return f"{content_type} “{_title(self.fields(raw, content_type), sys['id'])}”"


def _snapshot(
    settings: ContentfulSettings, state: StoreState, model_types: set[str], preview: bool
) -> Snapshot:
    localizer = _Localizer(state, settings.locale)
    description = settings.description + (" (preview)" if preview else "")
    snapshot = snapshot_of([], description=description)
    entries: list[RawEntry] = []
    app = f"{WEB_APP}/spaces/{settings.space}/environments/{settings.environment}"
    # The locale shapes every field, so a non-default one is part of each entry's digest.
    suffix = f":{settings.locale}" if settings.locale else ""
    ignored: Counter[str] = Counter()
    for item_id in sorted(state.entries):
        raw = state.entries[item_id]
        content_type = _content_type(raw)
        if content_type not in model_types:
            ignored[content_type] += 1
            continue
        fields = localizer.fields(raw, content_type)
        title = _title(fields, item_id)
        entries.append(
            RawEntry(
                id=item_id,
                content_type=content_type,
                fields=fields,
                origin=f"{content_type} “{title}” ({app}/entries/{item_id})",
                digest=f"{item_id}:{_version(raw)}{suffix}",
            )
        )
    if ignored:
        count = sum(ignored.values())
        log.warning(
            "ignoring %d Contentful %s of content types not in cms_schema/: %s",
            count,
            "entry" if count == 1 else "entries",
            ", ".join(f"{name} ({n})" for name, n in sorted(ignored.items())),
        )
    for item_id in sorted(state.assets):
        asset = _asset(state.assets[item_id], localizer, f"{app}/assets/{item_id}", snapshot)
        if asset is not None:
            snapshot.assets[item_id] = asset
    filled = snapshot_of(entries, snapshot.assets, description)
    filled.problems.extend(snapshot.problems)
    return filled


def _asset(raw: Raw, localizer: _Localizer, where: str, snapshot: Snapshot) -> Asset | None:
    asset_id = raw["sys"]["id"]
    fields = localizer.fields(raw, None)
    file = fields.get("file")
    title = _text(fields.get("title")) or asset_id
    if not (isinstance(file, dict) and isinstance(file.get("url"), str) and file["url"]):
        snapshot.problems.append(
            Problem(
                f"asset “{title}” ({where})",
                "file",
                "file",
                "the asset has no file in this locale; upload one, or remove the asset",
            )
        )
        return None
    url = file["url"]
    source = url if url.startswith(("http://", "https://")) else "https:" + url
    details = _dict(file.get("details"))
    image = _dict(details.get("image"))
    return Asset(
        id=asset_id,
        title=_text(fields.get("title")) or _text(file.get("fileName")) or asset_id,
        alt=_text(fields.get("description")),
        mime=_text(file.get("contentType")) or "application/octet-stream",
        source=source,
        url=source,
        width=_int(image.get("width")),
        height=_int(image.get("height")),
        size=_int(details.get("size")),
    )


def _has_id(item: Any) -> bool:
    sys = item.get("sys") if isinstance(item, dict) else None
    return isinstance(sys, dict) and isinstance(sys.get("id"), str)


def _content_type(raw: Raw) -> str:
    link = raw["sys"].get("contentType")
    try:
        return str(link["sys"]["id"])
    except (KeyError, TypeError):
        return ""


def _version(raw: Raw) -> str:
    sys = raw["sys"]
    return f"{sys.get('revision') or sys.get('version') or 0}:{sys.get('updatedAt')}"


def _title(fields: dict[str, Any], fallback: str) -> str:
    return next((v for k in TITLE_FIELDS if (v := _text(fields.get(k)))), fallback)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
