"""`headwater doctor`: what a build would use and whether it can work — never a secret's value."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from headwater import __version__
from headwater.config import Project, resolve_source
from headwater.errors import ConfigError, HeadwaterError, SourceError

VARIABLES = (
    "CONTENTFUL_SPACE_ID",
    "CONTENTFUL_ENVIRONMENT",
    "CONTENTFUL_DELIVERY_TOKEN",
    "CONTENTFUL_PREVIEW_TOKEN",
    "CONTENTFUL_MANAGEMENT_TOKEN",
    "CONTENTFUL_WEBHOOK_SECRET",
    "CONTENTFUL_HOST",
    "CONTENTFUL_PREVIEW_HOST",
    "CONTENTFUL_MANAGEMENT_HOST",
    "NETLIFY_BUILD_HOOK_URL",
    "HEADWATER_PREVIEW_SECRET",
    "URL",
    "DEPLOY_PRIME_URL",
    "CONTEXT",
)
"""Every variable headwater reads; doctor says which are set, never what they hold."""
INPUT_FOLDERS = ("content", "templates", "static", "cms_schema")


@dataclass(frozen=True)
class Check:
    """One finding: `ok`, `warn` (a build works, but look) or `fail` (a build would fail,
    with the exit code it would fail with)."""

    name: str
    status: str
    detail: str
    exit_code: int = 0


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, "warn", detail)


def fail(name: str, detail: str, exit_code: int = 2) -> Check:
    return Check(name, "fail", detail, exit_code)


def diagnose(
    project: Path, env: Mapping[str, str], *, session: requests.Session | None = None
) -> Iterator[Check]:
    """Every check, in the order a build meets them (the CMS is asked only when it is the
    source a build would use)."""
    yield ok("python", f"{platform.python_version()} ({sys.executable})")
    yield check_packages()
    folders = Project(project)
    model_ok = True
    try:
        from headwater.schema import load_model

        model = load_model(folders.schema_dir)
        yield ok("cms_schema", f"{len(model.types)} content types in {folders.schema_dir}")
    except HeadwaterError as exc:
        model_ok = False
        yield fail("cms_schema", str(exc))
    source, why = which_source(env)
    yield ok("source", f"a build would read {source}: {why}")
    yield ok("variables", describe_variables(env))
    if source == "Contentful":
        yield from check_cms(folders, env, session, compare=model_ok)
    elif not folders.content_dir.is_dir():
        yield fail("content", f"{folders.content_dir} is not a folder: nothing to build from")
    yield check_output(folders, source)


def check_packages() -> Check:
    """headwater's version and its dependencies' (a missing one is a broken install)."""
    found, missing = [f"headwater {__version__}"], []
    for requirement in importlib.metadata.requires("headwater") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return fail(
            "packages",
            f"missing: {', '.join(missing)} (reinstall: make build, or pip install -e .)",
        )
    return ok("packages", ", ".join(found))


def which_source(env: Mapping[str, str]) -> tuple[str, str]:
    """(what a build with --source auto reads, why)."""
    if resolve_source("auto", env) == "contentful":
        space = env.get("CONTENTFUL_SPACE_ID", "").strip()
        return "Contentful", f"CONTENTFUL_SPACE_ID is set (space {space})"
    return "local content in content/", "CONTENTFUL_SPACE_ID is not set"


def describe_variables(env: Mapping[str, str]) -> str:
    """Which of headwater's variables are set and which are not — names only."""
    present = [name for name in VARIABLES if env.get(name, "").strip()]
    absent = [name for name in VARIABLES if name not in present]
    return (
        f"set: {', '.join(present) or 'none'}; not set: {', '.join(absent) or 'none'} "
        "(values are never shown)"
    )


def check_cms(
    project: Project, env: Mapping[str, str], session: requests.Session | None, *, compare: bool
) -> Iterator[Check]:
    """Whether the settings are complete, the Delivery API answers and takes the token, and
    the space's content model matches cms_schema/."""
    from headwater.contentful.client import ContentfulClient
    from headwater.contentful.management import model_differences
    from headwater.contentful.settings import ContentfulSettings

    try:
        settings = ContentfulSettings.from_env(env)
    except ConfigError as exc:
        yield fail("contentful", str(exc))
        return
    host, token, variable = settings.api("delivery")
    client = ContentfulClient(
        host,
        token,
        variable,
        settings.space,
        settings.environment,
        session or requests.Session(),
        max_attempts=2,
        deadline=min(settings.deadline, 15.0),
    )
    try:
        answer = client.get("/content_types", {"limit": 1000})
    except SourceError as exc:
        yield fail("contentful", str(exc), exc.exit_code)
        return
    remote = answer.get("items", [])
    yield ok(
        "contentful",
        f"{host} answers for {settings.description}; {variable} works "
        f"({len(remote)} content types published)",
    )
    if not compare:
        return
    differences = model_differences(project.schema_dir, remote)
    if not differences:
        yield ok("content model", "cms_schema/ matches the space's content types")
        return
    lines = [f"{type_id}: {'; '.join(diff)}" for type_id, diff in sorted(differences.items())]
    yield warn(
        "content model",
        "cms_schema/ differs from the space (headwater schema push --dry-run shows how): "
        + " | ".join(lines),
    )


def check_output(project: Project, source: str) -> Check:
    """Whether public/ holds a build newer than every input file (for a CMS source, the
    local inputs only: the space may have changed since, which only a build can tell)."""
    from headwater.buildinputs import manifest_path

    out_dir = project.root / "public"
    manifest = manifest_path(project, out_dir.resolve())
    if not out_dir.is_dir() or not manifest.is_file():
        return warn("public/", "no build yet: run headwater build")
    # SQLite in WAL mode: a build's last write may still be in the write-ahead log.
    wal = manifest.with_name(manifest.name + "-wal")
    built = max(p.stat().st_mtime_ns for p in (manifest, wal) if p.exists())
    newer = sorted(
        path.relative_to(project.root).as_posix()
        for folder in INPUT_FOLDERS
        if (project.root / folder).is_dir()
        for path in (project.root / folder).rglob("*")
        if path.is_file() and path.stat().st_mtime_ns > built
    )
    if newer:
        shown = ", ".join(newer[:3]) + (f" and {len(newer) - 3} more" if len(newer) > 3 else "")
        return warn(
            "public/", f"out of date: {len(newer)} files changed since it was built ({shown})"
        )
    if source == "Contentful":
        return ok("public/", "built after every local change (the space may have changed since)")
    return ok("public/", "current: built after the last change to any input file")
