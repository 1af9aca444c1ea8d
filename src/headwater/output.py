"""The write stage: render what changed into the spare folder, bring the search index up to
date, and swap the spare in (writer.py); the build manifest records what each folder holds."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.buildinputs import Theme
from headwater.cache import ContentCache
from headwater.config import BuildOptions
from headwater.manifest import Fingerprinter, Manifest
from headwater.search import is_bundle_file, published_count, update_index
from headwater.site import Route, Site, output_path
from headwater.writer import Publisher, WriteReport, list_files, spare_folder

if TYPE_CHECKING:
    from headwater.render import RouteRenderer

log = logging.getLogger(__name__)

PARALLEL_FROM = 300
"""Render in several processes when at least this many pages need rendering."""


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the summary line."""

    source: str
    pages: int
    rendered: int
    files: int
    write: WriteReport
    seconds: float
    out_dir: Path


def write_site(
    options: BuildOptions,
    site: Site,
    routes: dict[str, Route],
    keys: dict[str, str],
    copies: dict[str, Path | bytes],
    manifest: Manifest,
    stamp: list[Any],
    description: str,
    texts: ContentCache,
    theme: Theme,
    fingerprint: Fingerprinter,
    started: float,
    leading: frozenset[str] = frozenset(),
) -> BuildReport:
    """Render what changed into the spare folder and swap it in; record the manifest.
    `leading`: the ids of the entries that changed, whose own pages render first."""
    project, out_dir = options.project, options.out_dir
    # Static files and media carry their content hash in their names; generated files are
    # keyed by their bytes.
    keys.update(
        {
            name: name if isinstance(data, Path) else hashlib.blake2b(data).hexdigest()
            for name, data in copies.items()
        }
    )
    pages = int(stamp[1])
    live = None if options.full else manifest.outputs(out_dir)
    # The search index as it is, unless a page changes (then it is written again, below).
    keys.update({n: k for n, k in (live or {}).items() if is_bundle_file(n)})
    if live == keys:
        manifest.record_stamp(out_dir, stamp)
        manifest.save([out_dir, spare_folder(out_dir)])
        report = WriteReport(written=0, unchanged=len(keys), removed=0)
        elapsed = time.perf_counter() - started
        return BuildReport(description, pages, 0, len(keys), report, elapsed, out_dir)

    live_files = set(live) if live is not None else list_files(out_dir)
    spare = None if options.full else manifest.outputs(spare_folder(out_dir))
    publisher = Publisher(out_dir, spare_files=spare if spare is not None else None)
    # From here the spare folder changes: forget what it held until it is consistent again.
    manifest.record(publisher.spare, None)
    manifest.save([out_dir])

    spare = spare or {}
    live = live or {}
    todo = [name for name, key in keys.items() if spare.get(name) != key]
    link = [n for n in todo if live.get(n) == keys[n] and n in live_files]
    publisher.link_many(link)
    linked = set(link)
    rest = [n for n in todo if n not in linked]
    stale = [routes[n] for n in rest if n in routes]
    written = sum(publisher.put(n, copies[n]) for n in rest if n in copies)
    # The spare already held these as they must be now, but the live folder does not.
    todo_set = set(todo)
    differ = [n for n, key in keys.items() if n not in todo_set and live.get(n) != key]
    differ = [n for n in differ if publisher.differs(n)]
    written += len(differ)

    renderer: RouteRenderer | None = None

    def render(routes: Sequence[Route], before: int = 0) -> set[str]:
        """Render routes into the spare; the pages whose bytes changed."""
        nonlocal renderer
        if not routes:
            return set()
        if renderer is None:
            # Imported here: a build with nothing to render never loads Jinja2 or Markdown.
            from headwater.render import RouteRenderer

            renderer = RouteRenderer(
                site,
                project.templates_dir,
                theme.static_urls,
                publisher,
                project.cache_dir / "jinja",
                texts,
                fingerprint,
                parallel_from=PARALLEL_FROM,
            )
        tell = options.progress
        if tell is not None:  # one count over both calls
            tell = partial(_progress_after, tell, before, len(stale))
        done = renderer(routes, tell)
        return {output_path(r.url) for r, c in zip(routes, done, strict=True) if c}

    # The pages about the changed entries render first, and the search index is brought up
    # to date while the rest (pages that list or link to them) render, when those are few
    # enough to render in this process. Pagefind reads those as they are in the live folder;
    # one whose indexed part changed after all has its shard indexed again, once written.
    lead = [r for r in stale if _about(r) in leading]
    follow = [r for r in stale if _about(r) not in leading]
    published = published_count(out_dir, live)
    removed_pages = live_files - set(keys)
    index = partial(_index_search, publisher, keys, live, started)
    if lead and len(follow) < PARALLEL_FROM:
        first = render(lead)
        pending = {output_path(r.url) for r in follow}
        running = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as pool:
            changed = first | set(differ) | removed_pages
            indexing = pool.submit(index, published, changed, pending, running)
            # Rendering waits until Pagefind runs: the thread's own Python work (choosing
            # and linking the shard's pages) would otherwise wait for the GIL behind it.
            running.wait()
            late = render(follow, len(lead))
            index_written, count = indexing.result()
        index_written += index(count, late)[0]
    else:
        first, late = render(lead), render(follow, len(lead))
        index_written = index(published, first | late | set(differ) | removed_pages)[0]
    written += len(first) + len(late) + index_written
    log.info("rendered %d pages at %.2f s", len(stale), time.perf_counter() - started)
    publisher.remove_except(set(keys))
    removed = len(live_files - set(keys))
    swapped = bool(written or removed or not out_dir.exists())
    if swapped:
        publisher.swap()
        manifest.record(publisher.spare, None if options.full else (live or None))
    else:
        manifest.record(publisher.spare, dict(keys))
    manifest.record(out_dir, dict(keys))
    manifest.record_stamp(out_dir, stamp)
    manifest.save([out_dir, publisher.spare])
    report = WriteReport(written=written, unchanged=len(keys) - written, removed=removed)
    elapsed = time.perf_counter() - started
    return BuildReport(description, pages, len(stale), len(keys), report, elapsed, out_dir)


def _index_search(
    publisher: Publisher,
    keys: dict[str, str],
    live: Mapping[str, str],
    started: float,
    published: int | None,
    changed: Iterable[str],
    pending: Collection[str] = frozenset(),
    running: threading.Event | None = None,
) -> tuple[int, int]:
    """Bring the search index (search.py) up to date in the spare: the number of files
    written, and the shard count. `pending`: pages still being written (see search.py);
    `running` is set once Pagefind runs, or is not needed, or failed to."""
    spare, live_folder = publisher.spare, publisher.live
    try:
        files, indexed, count = update_index(
            spare,
            live_folder,
            keys,
            published,
            changed,
            pending,
            running.set if running is not None else None,
        )
    finally:
        if running is not None:
            running.set()
    if not indexed:
        return 0, count
    written = sum(publisher.put(name, data) for name, data in files.items())
    log.info(
        "search: %d of %d shards indexed, %d files written, at %.2f s",
        indexed,
        count,
        written,
        time.perf_counter() - started,
    )
    return written, count


def _about(route: Route) -> str | None:
    """The id of the entry a page is about (an article's, a topic's); None for a list."""
    own = route.recipe.own if route.recipe is not None else None
    return own.id if own is not None else None


def _progress_after(
    tell: Callable[[str, int, int], None], before: int, total: int, stage: str, done: int, _: int
) -> None:
    tell(stage, before + done, total)
