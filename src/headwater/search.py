"""Site search: Pagefind indexes the built pages, and the browser searches that index.

Pagefind (https://pagefind.app) reads the HTML of a built site and writes a static search
bundle: a WebAssembly search engine, the word index in chunks and one fragment per page, all
fetched on demand, so search needs no server. Only the elements marked `data-pagefind-body`
(articles and pages) are indexed; `data-pagefind-ignore` leaves out what every article repeats.

A Pagefind index is written whole, so a large site's pages are split into shards — by a hash of
their path, one shard per SHARD_PAGES pages — each its own bundle in `pagefind/<n>/`, which the
search page merges (Pagefind's `mergeIndex`). A build indexes again only the shards holding a
page that changed, appeared or went: an edit costs one shard, not the site, and the shards are a
function of the pages alone, so an incremental build's index is byte for byte a full build's.
`pagefind/shards.json` lists the bundles for the search page (a shard with no indexable page
has none).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from headwater.errors import OutputError

BUNDLE = "pagefind/"
"""Where the search bundles live in the output folder (the search page loads them from here)."""
SHARDS = BUNDLE + "shards.json"
"""The list of bundles: a folder without it has no index."""
SHARD_PAGES = 200
"""HTML pages a shard (about 150 of them indexed): Pagefind takes 2-3 ms a page, so an edit
re-indexes in about 0.3 s. A merged shard costs the first search two small files (its entry
and metadata, 2 KB) and its own chunk of the word index; it shares the first shard's engine
(Pagefind's mergeIndex loads no second WebAssembly module), so small shards are cheap to
search and their chunks are small."""
MARKER = b"data-pagefind-body"
TIMEOUT = 900.0


def is_bundle_file(name: str) -> bool:
    return name.startswith(BUNDLE)


def shard_count(html_pages: int) -> int:
    return max(1, math.ceil(html_pages / SHARD_PAGES))


def shard_of(name: str, count: int) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def indexed_part(page: Path) -> bytes | None:
    """The part of a page Pagefind indexes (its `data-pagefind-body` element, tags included);
    None for a page without one, or no page. Two versions of a page whose parts are equal
    index the same, whatever else changed (a related card, the page's title tag)."""
    try:
        html = page.read_bytes()
    except FileNotFoundError:
        return None
    marker = html.find(MARKER)
    if marker < 0:
        return None
    start = html.rfind(b"<", 0, marker)
    tag = re.match(rb"<([a-zA-Z][a-zA-Z0-9]*)", html[start:])
    if tag is None:
        return html[start:]
    name = tag.group(1)
    depth = 0
    for found in re.finditer(rb"<(/?)" + name + rb"\b", html[start:]):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            end = html.find(b">", start + found.end())
            return html[start : end + 1 if end >= 0 else len(html)]
    return html[start:]


def shards_file(count: int, bundles: Iterable[int]) -> bytes:
    """The list the search page reads: the shard count, and the shards that have a bundle."""
    listed = [f"/{BUNDLE}{n}/" for n in sorted(bundles)]
    return (json.dumps({"count": count, "bundles": listed}) + "\n").encode()


def published_count(site_folder: Path, keys: Mapping[str, str]) -> int | None:
    """The shard count of the index in a built folder whose output names and keys are `keys`;
    None when it has none (or not one this version wrote)."""
    if SHARDS not in keys:
        return None
    try:
        count = json.loads((site_folder / SHARDS).read_bytes())["count"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return count if isinstance(count, int) else None


def update_index(
    spare: Path,
    live: Path,
    keys: dict[str, str],
    published: int | None,
    changed: Iterable[str],
    pending: Collection[str] = frozenset(),
    started: Callable[[], None] | None = None,
) -> tuple[dict[str, bytes], int, int]:
    """Index again the shards holding a page of `changed` whose indexed part differs between
    the live folder and the spare (the new site, whose output names and keys are `keys`), given
    the shard count of the index the live folder has (`published`, None for none). The
    `pending` pages are still being written into the spare: they are read from the live folder.
    `started` is called once Pagefind runs; it is not called when no shard needs indexing or
    none has a page to index, so a caller waiting on it also stops waiting when this returns.

    The re-indexed shards' files replace theirs in keys (all, when the shard count changed);
    returns the files to write into the spare, and how many shards of how many were indexed."""
    html = sorted(n for n in keys if n.endswith(".html"))
    count = shard_count(len(html))
    if published == count:
        # A page counts if what Pagefind reads of it changed (a list page never does).
        todo = set()
        for name in (n for n in changed if n.endswith(".html")):
            new = indexed_part(spare / name) if name in keys else None
            old = indexed_part(live / name)
            if new != old:
                todo.add(shard_of(name, count))
    else:  # no index yet, or the site grew or shrank past a shard
        todo = set(range(count))
        for name in [n for n in keys if is_bundle_file(n)]:
            del keys[name]
    if not todo:
        return {}, 0, count
    files: dict[str, bytes] = {}
    bundles = index_shards(spare, html, count, todo, live, pending, started)
    for shard, bundle in bundles.items():
        prefix = f"{BUNDLE}{shard}/"
        for name in [n for n in keys if n.startswith(prefix)]:
            del keys[name]
        files.update(bundle)
    keys.update({name: hashlib.blake2b(data).hexdigest() for name, data in files.items()})
    listed = [n for n in range(count) if f"{BUNDLE}{n}/pagefind-entry.json" in keys]
    files[SHARDS] = shards_file(count, listed)
    keys[SHARDS] = hashlib.blake2b(files[SHARDS]).hexdigest()
    return files, len(todo), count


def index_shards(
    site_folder: Path,
    html: Iterable[str],
    count: int,
    shards: set[int],
    before: Path | None = None,
    pending: Collection[str] = frozenset(),
    started: Callable[[], None] | None = None,
) -> dict[int, dict[str, bytes]]:
    """The search bundle of each of these shards of site_folder's HTML pages, as output names
    and bytes (empty for a shard with nothing to index). The `pending` pages, which a build
    is still writing into site_folder, are read as they are in `before` (the site it
    replaces): the build indexes a shard again if one's indexed part turns out to differ.

    Raises OutputError when Pagefind is missing or fails; a build then publishes nothing."""
    members: dict[int, list[str]] = {n: [] for n in shards}
    for name in html:
        shard = shard_of(name, count)
        if shard in members:
            members[shard].append(name)

    def index(shard: int) -> dict[str, bytes]:
        names = sorted(members[shard])
        prefix = f"{BUNDLE}{shard}/"
        return _index(site_folder, names, prefix, before or site_folder, pending, started)

    # Each Pagefind run is a process of its own: a thread per core waits on one.
    workers = min(len(members), os.cpu_count() or 1)
    if workers <= 1:
        return {n: index(n) for n in sorted(members)}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(sorted(members), pool.map(index, sorted(members)), strict=True))


def _index(
    site_folder: Path,
    names: list[str],
    prefix: str,
    before: Path,
    pending: Collection[str],
    started: Callable[[], None] | None,
) -> dict[str, bytes]:
    from pagefind_bin import get_executable  # the binary of the pinned `pagefind[bin]`

    try:
        executable = get_executable()
    except FileNotFoundError as error:
        raise OutputError(f"the Pagefind binary is missing: {error}") from None
    with tempfile.TemporaryDirectory(prefix="headwater-search-") as scratch:
        # The shard's indexable pages, linked at their paths (Pagefind makes URLs of them).
        site, bundle = Path(scratch) / "site", Path(scratch) / "bundle"
        pages = 0
        for name in names:
            source = (before if name in pending else site_folder) / name
            try:
                if MARKER not in source.read_bytes():
                    continue  # a list or a notice: nothing of its own to find
            except FileNotFoundError:
                continue  # a new page still to be written
            target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
            pages += 1
        if not pages:
            return {}
        command = [str(executable), "--site", str(site), "--output-path", str(bundle)]
        command += ["--force-language", "en", "--silent"]
        pipe = subprocess.PIPE
        with subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True) as process:
            if started is not None:
                started()
            try:
                stdout, stderr = process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise OutputError(f"Pagefind did not finish indexing in {TIMEOUT:.0f} s") from None
        if process.returncode != 0 or not (bundle / "pagefind-entry.json").is_file():
            detail = (stderr or stdout).strip().splitlines()[-5:]
            raise OutputError(
                f"Pagefind could not index the site (exit {process.returncode}): "
                + (" / ".join(detail) or "no output")
            )
        return {
            prefix + path.relative_to(bundle).as_posix(): path.read_bytes()
            for path in sorted(bundle.rglob("*"))
            if path.is_file() and _wanted(path.name)
        }


def _wanted(name: str) -> bool:
    # Pagefind's ready-made interfaces and highlighter: the search page has its own script.
    return not (("-ui." in name) or name.startswith("pagefind-highlight."))
