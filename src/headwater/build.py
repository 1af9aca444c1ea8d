"""The build: load, check, plan, render, write — every stage in order, nothing written early."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from headwater.assets import plan_media, plan_static
from headwater.config import BuildOptions
from headwater.errors import ConfigError, ContentError
from headwater.model import Content, Snapshot
from headwater.render import render_site
from headwater.schema import check_snapshot, load_model
from headwater.site import Site, plan_site
from headwater.sources.local import load_snapshot
from headwater.writer import WriteReport, write_site

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the summary line."""

    source: str
    pages: int
    files: int
    write: WriteReport
    seconds: float
    out_dir: Path


def load_source(options: BuildOptions) -> Snapshot:
    if options.source == "local":
        return load_snapshot(options.project.content_dir)
    raise ConfigError(
        f"the {options.source!r} source is not available in this version; use --source local"
    )


def check_content(options: BuildOptions) -> tuple[Content, Site, str]:
    """Load and validate everything; raise ContentError with every problem found."""
    model = load_model(options.project.schema_dir)
    snapshot = load_source(options)
    log.info("reading %s", snapshot.description)
    content, problems = check_snapshot(snapshot, model)
    if content is None or problems:
        raise ContentError(problems)
    plan_media(content.assets.values())
    site, problems = plan_site(content, options.base_url, preview=options.preview)
    if problems:
        raise ContentError(problems)
    return content, site, snapshot.description


def build(options: BuildOptions) -> BuildReport:
    """Build the site into options.out_dir, or raise before changing a byte of it."""
    started = time.perf_counter()
    content, site, description = check_content(options)
    static_urls, static_files = plan_static(options.project.static_dir)
    pages = render_site(site, options.project.templates_dir, static_urls)
    files: dict[str, bytes | Path] = {**pages, **static_files}
    files.update(plan_media(content.assets.values()))
    report = write_site(files, options.out_dir)
    return BuildReport(
        source=description,
        pages=sum(1 for name in pages if name.endswith(".html")),
        files=len(files),
        write=report,
        seconds=time.perf_counter() - started,
        out_dir=options.out_dir,
    )
