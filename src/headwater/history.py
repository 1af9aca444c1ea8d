"""URL history: every URL each entry's page has had, so an old URL never breaks.

When an editor changes a slug (or a topic or page is renamed), every URL the page had before
answers 301 with its current URL — one hop, whatever the number of renames — and when an
entry is unpublished or deleted, its URLs answer 410 Gone with a page that helps the reader on.

Where it lives, and why. The history is not a cache: losing it would silently break every old
link. So it is published with the site it describes, as `/_headwater/url-history.json`, in the
same atomic swap as the pages (see writer.py) — the deployed site is the record. A build reads
it from, in order: the output folder (the last build on this machine), a copy in the build
cache (a Netlify build starts with an empty publish folder but a restored cache), and, when
both are gone (a fresh cache, a new machine), the live site at the production URL (Netlify's
`URL`, in a production build: `CONTEXT=production`). A history
that exists but cannot be fetched stops the build (exit 3) rather than publish a site that
forgets its old URLs; a site that has none yet (a first deploy: 404) starts one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from headwater.errors import SourceError

log = logging.getLogger(__name__)

FORMAT = 1
HISTORY_PATH = "_headwater/url-history.json"
"""Where the history is published, relative to the site's root."""
FETCH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Page:
    """One entry's page over time: every URL it has had, the current one last."""

    content_type: str
    urls: tuple[str, ...]
    live: bool


@dataclass(frozen=True)
class History:
    """Every entry that ever had a page, by id."""

    pages: Mapping[str, Page] = field(default_factory=dict)

    def advance(self, current: Mapping[str, tuple[str, str]]) -> History:
        """The history after a build whose pages are `current` (entry id → (content type,
        URL)): moved pages gain their new URL, removed ones are marked gone, new ones added."""
        pages: dict[str, Page] = {}
        for entry_id, page in self.pages.items():
            now = current.get(entry_id)
            if now is None:
                pages[entry_id] = Page(page.content_type, page.urls, live=False)
            else:
                urls = tuple(u for u in page.urls if u != now[1]) + (now[1],)
                pages[entry_id] = Page(now[0], urls, live=True)
        for entry_id, (content_type, url) in current.items():
            if entry_id not in pages:
                pages[entry_id] = Page(content_type, (url,), live=True)
        return History(dict(sorted(pages.items())))

    def moved(self, live_urls: set[str]) -> dict[str, str]:
        """Old URL → the page's current URL, for every old URL no live page uses now."""
        found: dict[str, str] = {}
        for page in self.pages.values():
            if page.live:
                for old in page.urls[:-1]:
                    if old not in live_urls:
                        found[old] = page.urls[-1]
        return dict(sorted(found.items()))

    def gone(self, live_urls: set[str]) -> list[str]:
        """Every URL of a removed page that no live page uses now."""
        found = {
            url
            for page in self.pages.values()
            if not page.live
            for url in page.urls
            if url not in live_urls
        }
        return sorted(found)

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "pages": {
                entry_id: {"type": p.content_type, "urls": list(p.urls), "live": p.live}
                for entry_id, p in self.pages.items()
            },
        }
        return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> History:
        """Parse a published history; ValueError when it is not one."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError("not a headwater URL history of a known format")
        pages = {}
        for entry_id, page in raw["pages"].items():
            urls = tuple(str(u) for u in page["urls"])
            if not urls:
                raise ValueError(f"{entry_id} has no URLs")
            pages[str(entry_id)] = Page(str(page["type"]), urls, bool(page["live"]))
        return cls(dict(sorted(pages.items())))


def load_history(
    out_dir: Path, cache_copy: Path, live_site: str | None, *, fetch: bool = True
) -> History:
    """The history of the site in out_dir: from its last build, the cache's copy, or the
    live site (see the module's docstring); SourceError when it exists but cannot be read."""
    for path in (out_dir / HISTORY_PATH, cache_copy):
        try:
            return History.from_json(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the URL history in %s: %s", path, exc)
    if live_site is None or not fetch:
        return History()
    return fetch_history(live_site)


def fetch_history(live_site: str) -> History:
    """The history the live site publishes; empty when it publishes none (404)."""
    import requests

    url = f"{live_site.rstrip('/')}/{HISTORY_PATH}"
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT)
    except requests.RequestException as exc:
        raise SourceError(
            f"cannot fetch the URL history from the live site ({type(exc).__name__} for "
            f"{url}); building without it would break every old URL, so nothing was published"
        ) from None
    if response.status_code == 404:
        log.info("the live site %s has no URL history yet; starting one", live_site)
        return History()
    if response.status_code != 200:
        raise SourceError(
            f"the live site answered {response.status_code} for {url}; nothing was published"
        )
    try:
        history = History.from_json(response.content)
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"the live site's URL history at {url} is damaged: {exc}") from None
    log.info("read the URL history of %d pages from the live site", len(history.pages))
    return history


def save_copy(history: History, path: Path) -> None:
    """Keep a copy in the build cache (written after the site it describes is published)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(history.to_json())
    temporary.replace(path)
