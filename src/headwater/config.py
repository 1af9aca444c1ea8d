"""Build settings: where the project's folders are and the options of one run."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from headwater.errors import ConfigError

DEFAULT_BASE_URL = "http://localhost:8000"
"""Used when neither --base-url nor Netlify's URL is given: right for local preview."""

SOURCES = ("auto", "local", "contentful")

RACY_NS = 2_000_000_000
"""File timestamps are coarse (a few ms): a file changed this recently (ns) could change again
within the same tick unseen, so its size and timestamps are not trusted to mean "unchanged"."""


@dataclass(frozen=True)
class Project:
    """The folders of a headwater project; by default the current directory's."""

    root: Path

    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def schema_dir(self) -> Path:
        return self.root / "cms_schema"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def static_dir(self) -> Path:
        return self.root / "static"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache" / "headwater"


@dataclass(frozen=True)
class BuildOptions:
    """What one build run was asked to do."""

    project: Project
    out_dir: Path
    base_url: str
    source: str = "local"
    preview: bool = False
    full: bool = False
    drafts: bool = False
    """Include local files marked `draft: true` (previews, `serve --drafts`, `validate`)."""
    production: bool = False
    """Refuse to publish placeholders (Netlify's production context, or --production)."""
    offline: bool = False
    """Build from the CMS store as it is, asking the CMS nothing (the preview service keeps
    its store up to date itself)."""
    progress: Callable[[str, int, int], None] | None = field(
        default=None, compare=False, repr=False
    )
    """Told (stage, done, total) as long work advances, e.g. ("rendering", 120, 3000); the
    CLI draws it as a progress bar on a terminal. Not an input: it changes no output."""


def resolve_source(requested: str, env: Mapping[str, str]) -> str:
    """`auto` means Contentful when a space is configured, else the local snapshot."""
    if requested not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, not {requested!r}")
    if requested != "auto":
        return requested
    return "contentful" if env.get("CONTENTFUL_SPACE_ID") else "local"


def resolve_base_url(option: str | None, env: Mapping[str, str]) -> str:
    """--base-url, else Netlify's URL (DEPLOY_PRIME_URL for previews), else the default."""
    context = env.get("CONTEXT", "")
    candidates = [option]
    if context in ("deploy-preview", "branch-deploy"):
        candidates.append(env.get("DEPLOY_PRIME_URL"))
    candidates += [env.get("URL"), DEFAULT_BASE_URL]
    url = next(c for c in candidates if c)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the base URL must start with http:// or https://, not {url!r}")
    return url.rstrip("/")


def make_options(
    *,
    root: Path,
    out: str | None,
    base_url: str | None,
    source: str,
    preview: bool,
    full: bool,
    env: Mapping[str, str] | None = None,
    drafts: bool | None = None,
    production: bool = False,
) -> BuildOptions:
    """Turn command-line values and the environment into checked build options."""
    env = os.environ if env is None else env
    project = Project(root.resolve())
    out_dir = (project.root / (out or "public")).resolve()
    if out_dir in (project.root, *project.root.parents) or project.content_dir in (
        out_dir,
        *out_dir.parents,
    ):
        raise ConfigError(f"--out {out_dir} would overwrite the project itself")
    return BuildOptions(
        project=project,
        out_dir=out_dir,
        base_url=resolve_base_url(base_url, env),
        source=resolve_source(source, env),
        preview=preview,
        full=full,
        drafts=preview if drafts is None else drafts,
        production=production or (env.get("CONTEXT") == "production" and not preview),
    )
