"""The Contentful store on disk: raw entries, assets, locales, content types and the sync token.

One compact JSON file per API (`delivery.json`, `preview.json`) under
`<cache>/contentful/<space>/<environment>/`. It is replaced whole with os.replace, so a sync
that dies part-way leaves the previous file, and its token, exactly as they were.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STORE_FORMAT = 1
Raw = dict[str, Any]


@dataclass
class StoreState:
    """What one sync left behind; `key` says which space, API, host and model it belongs to."""

    key: dict[str, str]
    sync_token: str | None = None
    locales: list[Raw] = field(default_factory=list)
    content_types: list[Raw] = field(default_factory=list)
    entries: dict[str, Raw] = field(default_factory=dict)
    assets: dict[str, Raw] = field(default_factory=dict)


def store_path(cache_dir: Path, space: str, environment: str, api: str) -> Path:
    """Where the store for one space environment and API lives below the cache folder."""
    return cache_dir / "contentful" / _safe(space) / _safe(environment) / f"{api}.json"


def read_store(path: Path, key: dict[str, str]) -> StoreState | None:
    """The stored state if it is whole and was made for key; None means sync from scratch."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the Contentful store %s (%s); running a full sync", path, exc)
        return None
    try:
        state = _parse(raw)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning(
            "the Contentful store %s is damaged (%s); rebuilding it with a full sync", path, exc
        )
        return None
    if state.key != key:
        changed = sorted(k for k in key.keys() | state.key.keys() if key.get(k) != state.key.get(k))
        log.info(
            "the Contentful store %s was made for a different %s; running a full sync",
            path,
            ", ".join(changed),
        )
        return None
    return state


def write_store(path: Path, state: StoreState) -> None:
    """Replace the store in one step: write a new file beside it, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed run
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {
        "format": STORE_FORMAT,
        "key": state.key,
        "syncToken": state.sync_token,
        "locales": state.locales,
        "contentTypes": state.content_types,
        "entries": state.entries,
        "assets": state.assets,
    }
    try:
        # json.dumps in one go uses the C encoder; json.dump to a file would not.
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        with temporary.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _parse(raw: bytes) -> StoreState:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    if data.get("format") != STORE_FORMAT:
        raise ValueError(f"format {data.get('format')!r}, expected {STORE_FORMAT}")
    token = data["syncToken"]
    state = StoreState(
        key=_typed(data["key"], dict, "key"),
        sync_token=token if isinstance(token, str) else None,
        locales=_typed(data["locales"], list, "locales"),
        content_types=_typed(data["contentTypes"], list, "contentTypes"),
        entries=_typed(data["entries"], dict, "entries"),
        assets=_typed(data["assets"], dict, "assets"),
    )
    for name, items in (("entries", state.entries), ("assets", state.assets)):
        for item_id, item in items.items():
            if not (isinstance(item, dict) and isinstance(item.get("sys"), dict)):
                raise TypeError(f"{name}[{item_id!r}] has no sys")
    return state


def _typed(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{name} is not a JSON {'object' if kind is dict else 'array'}")
    return value


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(name: str) -> str:
    """A path component for an id; ids are [A-Za-z0-9._-] already, but never trust a path."""
    cleaned = _UNSAFE.sub("_", name)
    return cleaned if cleaned.strip(".") else "_"
