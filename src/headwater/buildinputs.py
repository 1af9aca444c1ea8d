"""What a build keys its outputs by, and where it keeps its state for an output folder.

`Theme` is what every page is made with besides content; `route_key` hashes everything one
route's output is made from; `input_signature` lets a build with no input changed stop after
the source's stat pass. The manifest, site index and URL-history copy of an output folder live
in the build cache, named by the folder's full path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from headwater.assets import plan_static
from headwater.config import BuildOptions, Project
from headwater.manifest import MANIFEST_SUFFIX, Fingerprinter, digest_files, signature_of
from headwater.model import Asset, Snapshot
from headwater.site import Route


@dataclass(frozen=True)
class Theme:
    """What every page is made with besides content: the engine, templates, model and the
    static files (by their published names)."""

    engine: str
    digest: str
    static_urls: dict[str, str]
    static_files: dict[str, Path | bytes]

    @classmethod
    def read(cls, project: Project, engine: str) -> Theme:
        static_urls, static_files = plan_static(project.static_dir)
        files = [
            *(p for p in project.templates_dir.rglob("*") if p.is_file()),
            *project.schema_dir.glob("*.json"),
        ]
        return cls(engine, digest_files(files, project.root), static_urls, static_files)

    def base(self, options: BuildOptions, updated: dt.date, nav: object) -> str:
        """What every route key starts from (see Fingerprinter)."""
        return "|".join(
            [
                self.engine,
                self.digest,
                repr(sorted(self.static_urls.items())),
                options.base_url,
                repr(options.preview),
                updated.isoformat(),
                repr(nav),
            ]
        )


def engine_of(base: object) -> str:
    """The engine a base (Theme.base, as a build's site index keeps it) was made by."""
    return str(base).split("|", 1)[0]


def assets_digest(assets: Mapping[str, Asset]) -> str:
    """A digest of every asset's published form."""
    text = repr(
        sorted((a.id, a.url, a.alt, a.title, a.mime, a.width, a.height) for a in assets.values())
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def input_signature(options: BuildOptions, engine: str, snapshot: Snapshot) -> str | None:
    """A signature of every input — what the source read, the theme, the static files, the
    model — and of the options; None when it cannot be trusted (a file changed too recently
    for its timestamps to tell, or a source without one)."""
    if options.full or snapshot.signature is None:
        return None
    project = options.project
    extra = repr(
        (
            engine,
            options.base_url,
            options.preview,
            options.drafts,
            options.production,
            str(project.root),
            snapshot.signature,
        )
    )
    return signature_of([project.templates_dir, project.static_dir, project.schema_dir], extra)


def route_key(fingerprint: Fingerprinter, settings_key: str, route: Route) -> str:
    """A hash of everything a route's output is made from (see Fingerprinter)."""
    plain = (
        route.url,
        route.template,
        route.title,
        route.heading,
        route.description,
        route.noindex,
        route.og_type,
        route.lastmod,
    )
    return fingerprint.page_key(settings_key, plain, route.image, route.context)


def history_copy(options: BuildOptions) -> Path:
    """The build cache's copy of an output folder's URL history (see history.py)."""
    return _cache_file(options.project, options.out_dir, ".urls.json")


def siteindex_path(project: Project, out_dir: Path) -> Path:
    """The site index of one output folder (see siteindex.py), beside its manifest."""
    return _cache_file(project, out_dir, ".sqlite3")


def manifest_path(project: Project, out_dir: Path) -> Path:
    """The build manifest of one output folder (see manifest.py)."""
    return _cache_file(project, out_dir, MANIFEST_SUFFIX)


def _cache_file(project: Project, out_dir: Path, suffix: str) -> Path:
    # Named by the folder's full path: two folders of the same name (a/public, b/public)
    # keep files of their own.
    name = hashlib.blake2b(str(out_dir).encode(), digest_size=8).hexdigest()
    return project.cache_dir / "manifests" / f"{out_dir.name}-{name}{suffix}"
