"""The build: lock, read, check, plan, fingerprint, render, write — nothing written early."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.assets import plan_media
from headwater.buildinputs import (
    Theme,
    assets_digest,
    engine_of,
    history_copy,
    input_signature,
    manifest_path,
    route_key,
    siteindex_path,
)
from headwater.cache import ContentCache, engine_digest
from headwater.cards import plan_cards, superseded_cards
from headwater.config import BuildOptions, Project
from headwater.content import check_changes, check_snapshot
from headwater.errors import ContentError
from headwater.history import HISTORY_PATH, load_history, save_copy
from headwater.locks import build_lock
from headwater.manifest import (
    Fingerprinter,
    Manifest,
    entry_version,
    load_manifest,
)
from headwater.model import Content, Entry, Problem, Snapshot
from headwater.output import PARALLEL_FROM, BuildReport, write_site
from headwater.placeholders import find_placeholders, summary
from headwater.redirects import link_resolver, redirects_file
from headwater.schema import ContentModel, load_model, structure
from headwater.site import (
    PLAIN_TYPES,
    Route,
    Site,
    check_links,
    entry_url,
    make_route,
    output_path,
    plan_site,
)
from headwater.siteindex import IndexedEntry, SiteIndex, State, decode, encode
from headwater.siteindex import reads as siteindex_reads
from headwater.writer import Publisher, WriteReport, spare_folder

if TYPE_CHECKING:
    from headwater.contentful.sync import PullReport

log = logging.getLogger(__name__)


def load_source(options: BuildOptions, model: ContentModel) -> Snapshot:
    project = options.project
    if options.source == "local":
        # Imported here: only local builds read YAML front matter.
        from headwater.sources.local import load_snapshot

        index = None if options.full else project.cache_dir / "local-files.pickle"
        slugged = frozenset(
            t for t in model.types if any(f["id"] == "slug" for f in model.fields(t))
        )
        return load_snapshot(
            project.content_dir, index_file=index, slugged=slugged, drafts=options.drafts
        )
    # Imported here: only Contentful builds need requests and the sync machinery.
    from headwater.contentful.settings import ContentfulSettings
    from headwater.contentful.sync import open_snapshot

    return open_snapshot(
        ContentfulSettings.from_env(os.environ, preview=options.preview),
        cache_dir=project.cache_dir,
        model_types=set(model.types),
        model_digest=model.digest,
        preview=options.preview,
        full=options.full,
        refresh=not options.offline,
        progress=options.progress,
    )


def pull(
    project: Project,
    env: Mapping[str, str],
    progress: Callable[[str, int, int], None] | None = None,
) -> PullReport:
    """Sync the Contentful space into the store; what `headwater pull` reports."""
    from headwater.contentful.settings import ContentfulSettings
    from headwater.contentful.sync import pull as pull_space

    model = load_model(project.schema_dir)
    with build_lock(project.cache_dir, project.root / "public"):
        return pull_space(
            ContentfulSettings.from_env(env),
            cache_dir=project.cache_dir,
            model_types=set(model.types),
            model_digest=model.digest,
            progress=progress,
        )


def check_content(options: BuildOptions) -> tuple[Content, Site, str]:
    """Load and validate everything; raise ContentError with every problem found."""
    checked = _check(options, fetch_history=False)
    checked.cache.close()
    return checked.content, checked.site, checked.description


@dataclass
class _Checked:
    content: Content
    site: Site
    snapshot: Snapshot
    cache: ContentCache
    """Where the entries' long texts are read back from while rendering."""
    placeholders: list[Problem]

    @property
    def description(self) -> str:
        return self.snapshot.description


def _check(
    options: BuildOptions,
    model: ContentModel | None = None,
    snapshot: Snapshot | None = None,
    *,
    fetch_history: bool = True,
    before: State | None = None,
) -> _Checked:
    """Check and plan the whole site. `before`, the last build's index, holds the
    placeholders found in the entries that have not changed since."""
    project = options.project
    model = model or load_model(project.schema_dir)
    snapshot = snapshot or load_source(options, model)
    log.info("reading %s", snapshot.description)
    cache = _content_cache(options, model, snapshot)
    try:
        content, problems = check_snapshot(snapshot, model, cache=cache, url_for=entry_url)
        if content is None or problems:
            raise ContentError(problems)
        lines = {i: r.lines for i, r in content.records.items()}
        placeholders = _placeholders(content.entries, lines, before)
        _guard(options, placeholders)
        history = load_history(
            options.out_dir,
            history_copy(options),
            _live_site(os.environ),
            fetch=fetch_history and not options.preview,
        )
        site, problems = plan_site(
            content, options.base_url, preview=options.preview, history=history
        )
        if problems:
            raise ContentError(problems)
    except BaseException:
        cache.close()
        raise
    return _Checked(content, site, snapshot, cache, placeholders)


def _placeholders(
    entries: Iterable[Entry], lines: Mapping[str, Mapping[str, int]], before: State | None
) -> list[Problem]:
    """The placeholders in these entries (placeholders.py): those the last build (by this
    engine) found in an entry it saw with the same digest and origin, and those in the others,
    found again."""
    if before is None or engine_of(before.stamp.get("base")) != engine_digest():
        return find_placeholders(entries, lines)
    found: dict[str, list[Problem]] = {}
    for problem in before.stamp.get("placeholders", ()):
        found.setdefault(problem.origin, []).append(problem)
    problems: list[Problem] = []
    for entry in entries:
        was = before.entries.get(entry.id)
        if was is not None and was.digest == entry.digest and was.origin == entry.origin:
            problems += found.pop(entry.origin, ())  # (once: an origin is one entry's)
        else:
            problems += find_placeholders([entry], lines)
    return problems


def _content_cache(options: BuildOptions, model: ContentModel, snapshot: Snapshot) -> ContentCache:
    if options.full:
        return ContentCache.disabled(snapshot.texts)
    key = f"{model.digest}:{engine_digest()}"
    return ContentCache.for_scope(
        options.project.cache_dir, _scope(options, snapshot), key, snapshot.texts
    )


def _guard(options: BuildOptions, placeholders: list[Problem]) -> None:
    """Refuse placeholders in production; elsewhere, say once that they are there."""
    if placeholders and options.production:
        raise ContentError(placeholders)
    if placeholders:
        log.warning("%s", summary(placeholders))


def _scope(options: BuildOptions, snapshot: Snapshot) -> str:
    """What the content cache of a build is for: one source (and API) of one project."""
    return (
        f"{options.source}|{options.preview}|{options.drafts}|{options.production}|"
        f"{options.project.root}|{snapshot.description}"
    )


def _live_site(env: Mapping[str, str]) -> str | None:
    """The deployed site a production build on Netlify reads the URL history from when it
    has no copy of its own (a fresh cache): Netlify's URL, in its production context only."""
    if env.get("CONTEXT") == "production" and env.get("URL"):
        return env["URL"]
    return None


def build(options: BuildOptions) -> BuildReport:
    """Build the site into options.out_dir, or raise before changing a byte of it.

    Only pages whose inputs changed since the last build are rendered, and only files whose
    bytes changed are written (see manifest.py and writer.py); `options.full` renders everything.
    Builds of one project, or into one output folder, run one at a time (see locks.py).
    """
    with build_lock(options.project.cache_dir, options.out_dir), _no_cyclic_gc():
        return _build(options)


def prime_spare(options: BuildOptions) -> int:
    """Make the spare folder hold what the output folder holds (hard links), so the next build
    writes only what changes. A build after a cold one would otherwise link every page first;
    a long-running service (the live preview) does it while it waits. The number linked."""
    with build_lock(options.project.cache_dir, options.out_dir):
        engine = engine_digest()
        manifest_file = manifest_path(options.project, options.out_dir)
        with contextlib.closing(load_manifest(manifest_file, engine)) as manifest:
            return _prime(options, manifest)


def _prime(options: BuildOptions, manifest: Manifest) -> int:
    live = manifest.outputs(options.out_dir)
    spare = spare_folder(options.out_dir)
    if live is None or manifest.outputs(spare) == live:
        return 0
    publisher = Publisher(options.out_dir)
    manifest.record(spare, None)  # unknown until every link is made
    manifest.save([options.out_dir])
    publisher.link_many(live)
    publisher.remove_except(set(live))
    manifest.record(spare, dict(live))
    manifest.save([options.out_dir, spare])
    return len(live)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a build makes a few hundred thousand long-lived
    objects (entries, routes) and almost no garbage cycles, and the collector's passes over
    them cost a third of an incremental build."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(options: BuildOptions) -> BuildReport:
    started = time.perf_counter()
    project, out_dir = options.project, options.out_dir
    engine = engine_digest()
    with contextlib.closing(load_manifest(manifest_path(project, out_dir), engine)) as manifest:
        model = load_model(project.schema_dir)
        snapshot = load_source(options, model)
        inputs = input_signature(options, engine, snapshot)
        stamp = manifest.stamp(out_dir)
        files = manifest.size(out_dir) if inputs and stamp and stamp[0] == inputs else None
        if stamp and files is not None:
            # Not a byte of the inputs moved since this folder was built from them.
            nothing = WriteReport(written=0, unchanged=files, removed=0)
            elapsed = time.perf_counter() - started
            return BuildReport(
                snapshot.description, int(stamp[1]), 0, files, nothing, elapsed, out_dir
            )
        theme = Theme.read(project, engine)
        index = SiteIndex(siteindex_path(project, out_dir))
        try:
            state = None if options.full else index.state()
            if state is not None:
                changed = _build_changes(
                    options, model, snapshot, theme, index, state, manifest, inputs, started
                )
                if changed is not None:
                    return changed
            checked = _check(options, model, snapshot, before=state)
            try:
                return _publish(options, model, checked, theme, index, manifest, inputs, started)
            finally:
                checked.cache.close()
        finally:
            index.close()


def _build_changes(
    options: BuildOptions,
    model: ContentModel,
    snapshot: Snapshot,
    theme: Theme,
    index: SiteIndex,
    state: State,
    manifest: Manifest,
    inputs: str | None,
    started: float,
) -> BuildReport | None:
    """Build in proportion to the change, when the last build's index (`state`) says how;
    None when a whole plan is needed (see siteindex.py)."""
    out_dir = options.out_dir
    live = manifest.outputs(out_dir)
    folder_stamp = manifest.stamp(out_dir)
    if live is None or folder_stamp is None or len(folder_stamp) < 3:
        return None
    stamp = state.stamp
    base = theme.base(options, stamp["updated"], stamp["nav"])
    if (
        stamp.get("token") != folder_stamp[2]
        or stamp.get("base") != base
        or stamp.get("assets") != assets_digest(snapshot.assets)
        or stamp.get("scope") != _scope(options, snapshot)
    ):
        return None
    cache = _content_cache(options, model, snapshot)
    try:
        changes = check_changes(snapshot, model, cache=cache, before=state.entries)
        if changes is None:
            log.info("the changes move pages or lists: planning the whole site")
            return None
        redirects = stamp["redirects"]
        changed_origins = {state.entries[i].origin for i in changes.changed} | {
            snapshot.heads[i].origin for i in changes.changed
        }
        moved = {r.source: r.target for r in redirects if r.status in (301, 302)}

        def exists(path: str) -> bool:
            return index.has(output_path(path))

        problems = list(changes.problems)
        for entry_id in changes.changed:
            problems += check_links(changes.records[entry_id], exists, moved)
        if problems:
            raise ContentError(problems)
        # Placeholders: those the last build found in the entries that did not change, and
        # those the changed ones hold now.
        placeholders = [p for p in stamp["placeholders"] if p.origin not in changed_origins]
        placeholders += find_placeholders(
            (changes.entries[i] for i in changes.changed),
            {i: r.lines for i, r in changes.records.items()},
        )
        _guard(options, placeholders)
        affected = index.readers(changes.changed)
        stored = index.routes(affected)
        if stored.keys() != affected:
            return None
        settings = changes.settings
        site = Site(
            settings=settings,
            base_url=options.base_url,
            routes=[],
            nav=stamp["nav"],
            updated=stamp["updated"],
            preview=options.preview,
            entries=changes.entries,
            assets=snapshot.assets,
            redirects=redirects,
        )
        routes = {
            path: make_route(decode(recipe, changes.entries), settings)
            for path, (recipe, _) in stored.items()
        }
        log.info(
            "%d changed entries are read by %d pages; checked at %.2f s",
            len(changes.changed),
            len(routes),
            time.perf_counter() - started,
        )
        heads, before = snapshot.heads, state.entries

        def version_of(entry_id: str) -> str | None:
            head, was = heads.get(entry_id), before.get(entry_id)
            return (
                None
                if head is None or was is None
                else entry_version(entry_id, head.digest, was.url)
            )

        fingerprint = Fingerprinter(
            base,
            plain_types=PLAIN_TYPES,
            resolve=link_resolver(redirects),
            known=index.deep_digests(),
            version_of=version_of,
        )
        settings_key = fingerprint.deep(settings)
        cards = _cards(options, site, routes.values())
        replaced = superseded_cards(live, cards)
        keys = {k: v for k, v in live.items() if k not in replaced}
        keys.update({path: route_key(fingerprint, settings_key, r) for path, r in routes.items()})
        copies: dict[str, Path | bytes] = {
            **theme.static_files,
            **plan_media(snapshot.assets.values()),
            **cards,
        }
        token = os.urandom(8).hex()
        report = write_site(
            options,
            site,
            routes,
            keys,
            copies,
            manifest,
            [inputs, int(folder_stamp[1]), token],
            snapshot.description,
            cache,
            theme,
            fingerprint,
            started,
            frozenset(changes.changed),
        )
        reads_now = {
            path: (stored[path][1], siteindex_reads(route.recipe))
            for path, route in routes.items()
            if route.recipe is not None
        }
        index.save_delta(
            {**stamp, "token": token, "placeholders": placeholders},
            {
                i: IndexedEntry(
                    snapshot.heads[i].digest,
                    state.entries[i].content_type,
                    state.entries[i].url,
                    snapshot.heads[i].origin,
                    state.entries[i].slug,
                    state.entries[i].structure,
                )
                for i in changes.changed
            },
            reads_now,
            fingerprint.fresh,
        )
        return report
    finally:
        cache.close()


def _publish(
    options: BuildOptions,
    model: ContentModel,
    checked: _Checked,
    theme: Theme,
    index: SiteIndex,
    manifest: Manifest,
    inputs: str | None,
    started: float,
) -> BuildReport:
    """Publish a fully planned site (rendering only the pages whose keys changed), and index
    the plan for the next build."""
    content, site = checked.content, checked.site
    log.info(
        "read, checked and planned %d routes in %.2f s",
        len(site.routes),
        time.perf_counter() - started,
    )
    base = theme.base(options, site.updated, site.nav)
    fingerprint = Fingerprinter(
        base, plain_types=PLAIN_TYPES, resolve=link_resolver(site.redirects)
    )
    settings_key = fingerprint.deep(site.settings)
    routes = {output_path(r.url): r for r in site.routes}
    keys = {name: route_key(fingerprint, settings_key, r) for name, r in routes.items()}
    copies: dict[str, Path | bytes] = {
        **theme.static_files,
        **plan_media(content.assets.values()),
        **_cards(options, site, site.routes),
        "_redirects": redirects_file(site.redirects),
        HISTORY_PATH: site.history.to_json(),
    }
    pages = sum(1 for r in site.routes if r.is_html)
    log.info("fingerprinted at %.2f s", time.perf_counter() - started)
    token = os.urandom(8).hex()
    report = write_site(
        options,
        site,
        routes,
        keys,
        copies,
        manifest,
        [inputs, pages, token],
        checked.description,
        checked.cache,
        theme,
        fingerprint,
        started,
    )
    stamp = {
        "token": token,
        "base": base,
        "updated": site.updated,
        "nav": site.nav,
        "assets": assets_digest(content.assets),
        "scope": _scope(options, checked.snapshot),
        "redirects": site.redirects,
        "placeholders": checked.placeholders,
    }

    def rows() -> tuple[
        dict[str, IndexedEntry], dict[str, tuple[Any, tuple[str, ...]]], dict[str, tuple[str, str]]
    ]:
        entries = {
            e.id: IndexedEntry(
                e.digest,
                e.content_type,
                e.url,
                e.origin,
                e.fields.get("slug") if isinstance(e.fields.get("slug"), str) else None,
                structure(content.records[e.id], model),
            )
            for e in content.entries
        }
        indexed = {
            path: (encode(r.recipe), siteindex_reads(r.recipe))
            for path, r in routes.items()
            if r.recipe is not None
        }
        return entries, indexed, fingerprint.fresh

    index.save_all(stamp, rows, background=len(routes) >= PARALLEL_FROM)
    save_copy(site.history, history_copy(options))
    return report


def _cards(options: BuildOptions, site: Site, routes: Iterable[Route]) -> dict[str, Path]:
    """The share cards these routes show, drawn into the cache unless drawn before."""
    started = time.perf_counter()
    cards = plan_cards(site, routes, options.project.cache_dir / "cards")
    log.info("%d share cards ready in %.2f s", len(cards), time.perf_counter() - started)
    return cards
