"""What a build reads from a Contentful store, and what the webhook behind a build announced.

`store_snapshot` offers a store to a build: entry heads (id, type, version) without parsing
any entry, the assets, and a reader that parses entries on demand and reads a RichText body
back by entry id and digest while its page renders (reopening the store in a forked worker),
so the content cache needs no copy of any body. `expected_changes` reads what the receiver
(or Netlify's build hook) said changed, and `visible` tells whether a store already shows it:
the sync waits for Contentful's CDN until it does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

from headwater.cache import text_digest
from headwater.contentful.convert import Localizer, asset_of, entry_origin, raw_entry
from headwater.contentful.settings import ContentfulSettings
from headwater.contentful.store import Row, Store
from headwater.model import Asset, EntryHead, Problem, RawEntry, Snapshot

log = logging.getLogger(__name__)


class _StoreReader:
    """Reads a store's entries, and their long texts, on demand (reopening the store in a
    forked process)."""

    def __init__(self, store: Store, localizer: Localizer, web_app: str, suffix: str) -> None:
        self.store = store
        self.localizer = localizer
        self.web_app = web_app
        self.suffix = suffix
        self.pid = os.getpid()

    def _rows(self, ids: Collection[str]) -> list[Row]:
        if os.getpid() != self.pid:
            opened = Store.open(self.store.path, self.store.key)
            if opened is None:
                return []
            self.store, self.pid = opened, os.getpid()
        return self.store.rows("Entry", ids)

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        return {
            row.id: raw_entry(
                row.raw, self.localizer, self.web_app, f"{row.id}:{row.version}{self.suffix}"
            )
            for row in self._rows(ids)
        }

    def text(self, entry_id: str, field: str, digest: str) -> Any:
        """A RichText body as the store holds it now: the one checked, or KeyError."""
        for row in self._rows([entry_id]):
            value = self.localizer.fields(row.raw, row.content_type).get(field)
            if value is not None and text_digest(value) == digest:
                return value
        raise KeyError(f"{entry_id} {field} {digest}")


def store_snapshot(
    settings: ContentfulSettings, store: Store, model_types: Collection[str], preview: bool
) -> Snapshot:
    """The store as a build reads it: heads without parsing any entry, assets, problems."""
    localizer = Localizer(
        store.meta_json("locales"), store.meta_json("content_types"), settings.locale
    )
    web_app = settings.web_app
    # The locale shapes every field, so a non-default one is part of each entry's digest.
    suffix = f":{settings.locale}" if settings.locale else ""
    heads: dict[str, EntryHead] = {}
    ignored: Counter[str] = Counter()
    for entry_id, content_type, version, title in store.heads("Entry"):
        if content_type not in model_types:
            ignored[content_type] += 1
            continue
        origin = entry_origin(content_type, title, web_app, entry_id)
        heads[entry_id] = EntryHead(entry_id, content_type, f"{entry_id}:{version}{suffix}", origin)
    if ignored:
        count = sum(ignored.values())
        log.warning(
            "ignoring %d Contentful %s of content types not in cms_schema/: %s",
            count,
            "entry" if count == 1 else "entries",
            ", ".join(f"{name} ({n})" for name, n in sorted(ignored.items())),
        )
    assets: dict[str, Asset] = {}
    problems: list[Problem] = []
    for row in store.rows("Asset"):
        found = asset_of(row.raw, localizer, web_app)
        if isinstance(found, Problem):
            problems.append(found)
        else:
            assets[row.id] = found
    generation = store.meta("generation") or ""
    reader = _StoreReader(store, localizer, web_app, suffix)
    return Snapshot(
        description=settings.description + (" (preview)" if preview else ""),
        heads=heads,
        reader=reader,
        assets=assets,
        problems=problems,
        signature=hashlib.blake2b(
            json.dumps([store.key, generation]).encode(), digest_size=16
        ).hexdigest()
        if generation
        else None,
        texts=reader,
    )


def expected_changes(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """What the webhook said changed: from the receiver (HEADWATER_CHANGES) or from Netlify's
    build hook (INCOMING_HOOK_BODY, the receiver's forwarded body)."""
    raw = env.get("HEADWATER_CHANGES")
    if not raw and env.get("INCOMING_HOOK_BODY"):
        raw = env["INCOMING_HOOK_BODY"]
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("ignoring a build-hook body that is not JSON")
        return []
    changes = data.get("changes", []) if isinstance(data, dict) else data
    found = [
        c
        for c in changes
        if isinstance(c, dict) and c.get("kind") in ("Entry", "Asset", "ContentType")
    ]
    if found:
        log.info("triggered by %s", ", ".join(describe(c) for c in found))
    return found


def visible(change: dict[str, Any], store: Store) -> bool:
    """Whether the store already reflects one webhook's change."""
    if change.get("kind") not in ("Entry", "Asset"):
        return True
    ident = str(change.get("id", ""))
    gone = str(change.get("topic", "")).rsplit(".", 1)[-1] in ("unpublish", "delete", "archive")
    rows = store.rows(str(change["kind"]), [ident])
    if gone or not rows:
        return gone == (not rows)
    version = change.get("version")
    revision = rows[0].version.split(":", 1)[0]
    return not isinstance(version, int) or not revision.isdigit() or int(revision) >= version


def describe(change: dict[str, Any]) -> str:
    action = str(change.get("topic", "")).rsplit(".", 1)[-1] or "change"
    name = change.get("title") or change.get("id")
    version = f" v{change['version']}" if change.get("version") is not None else ""
    return f"{change.get('kind', 'entry').lower()} {name!r} {action}{version}"
