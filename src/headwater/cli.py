"""The `headwater` command: parse options, call one function, map errors to exit codes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from headwater.build import build, check_content, pull
from headwater.cli_base import (
    CONTEXT,
    CommandGroup,
    common_options,
    err,
    out,
    output_folder,
    run_action,
    source_option,
)
from headwater.cli_servers import preview_command, serve_command, webhook_command
from headwater.config import Project, make_options
from headwater.errors import ContentError
from headwater.model import Problem
from headwater.output import BuildReport
from headwater.progress import BuildProgress


@click.group(
    cls=CommandGroup,
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  headwater build                      build content/ (or Contentful) into public/
  headwater serve                      preview locally with live reload
  headwater validate --format json     every content problem, one JSON object a line
  headwater doctor                     what a build would use, and whether it can work
  headwater --project ../site build -v another project folder, with each stage logged

\b
Exit codes: 0 success; 1 invalid content (nothing published); 2 bad usage or
configuration; 3 CMS or network failure (nothing published).
Run `headwater COMMAND -h` for a command's options.""",
)
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=".",
    show_default=True,
    help="The project folder (content/, templates/, static/, cms_schema/).",
)
@common_options()
@click.pass_context
def main(ctx: click.Context, project: Path) -> None:
    """Build the Three Rivers Wellness site from Contentful or the local content/ snapshot."""
    ctx.obj = project


@main.command(
    "build",
    epilog="""\b
Examples:
  headwater build                          into public/ (from Contentful if CONTENTFUL_SPACE_ID)
  headwater build --source local --full    from content/, rendering every page
  headwater build --out /tmp/site          into another folder (relative to where you are)
  headwater build --preview                drafts into public-preview/, marked noindex""",
)
@source_option
@click.option("--preview", is_flag=True, help="Build drafts into a preview site (noindex).")
@click.option(
    "--out",
    default=None,
    help="Output folder, relative to the current folder [default: public/ of the project, "
    "or public-preview/].",
)
@click.option("--base-url", default=None, help="Absolute site URL [default: $URL, else localhost].")
@click.option("--full", is_flag=True, help="Rebuild everything, ignoring the build manifest.")
@click.option(
    "--production",
    is_flag=True,
    help="Refuse to publish placeholders (the default when Netlify's CONTEXT is production).",
)
@common_options()
@click.pass_obj
def build_command(
    project: Path,
    source: str,
    preview: bool,
    out: str | None,
    base_url: str | None,
    full: bool,
    production: bool,
) -> None:
    """Validate the content and write the static site; nothing is written if anything fails."""
    run_action(lambda: _build(project, source, preview, out, base_url, full, production))


def _build(
    project: Path,
    source: str,
    preview: bool,
    out_name: str | None,
    base_url: str | None,
    full: bool,
    production: bool = False,
) -> None:
    # Netlify's deploy previews show drafts when a preview token is there to fetch them; their
    # publish folder is public/, so only an explicit --preview defaults to public-preview.
    netlify_preview = os.environ.get("CONTEXT") == "deploy-preview" and bool(
        os.environ.get("CONTENTFUL_PREVIEW_TOKEN")
    )
    options = make_options(
        root=project,
        out=output_folder(out_name, "public-preview" if preview else "public"),
        base_url=base_url,
        source=source,
        preview=preview or netlify_preview,
        full=full,
        production=production,
    )
    with BuildProgress(err) as progress:
        report = build(dataclasses.replace(options, progress=progress))
    out.print(summary_line(report), soft_wrap=True, markup=False)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(report: BuildReport) -> str:
    """What a build did, pages and other files counted apart: "Built 14 pages and 8 other
    files from … in 0.18 s → public/ (22 files: 2 written, 20 unchanged, 0 removed; 3
    rendered)"."""
    write = report.write
    where = report.out_dir
    if where.is_relative_to(Path.cwd()):
        where = where.relative_to(Path.cwd())
    change = (
        f"{write.written} written, {write.unchanged} unchanged, {write.removed} removed"
        if write.changed
        else "nothing changed"
    )
    others = max(report.files - report.pages, 0)
    return (
        f"Built {_plural(report.pages, 'page')} and {_plural(others, 'other file')} from "
        f"{report.source} in {report.seconds:.2f} s → {where}/ ({report.files} files: {change}; "
        f"{report.rendered} rendered)"
    )


@main.command(
    "pull",
    epilog="""\b
Example:
  CONTENTFUL_SPACE_ID=… CONTENTFUL_DELIVERY_TOKEN=… headwater pull""",
)
@common_options()
@click.pass_obj
def pull_command(project: Path) -> None:
    """Sync the Contentful space into the local store and print what changed."""

    def run() -> None:
        with BuildProgress(err) as progress:
            report = pull(Project(project.resolve()), os.environ, progress)
        kind = "initial sync" if report.initial else "delta sync"
        out.print(
            f"{report.description} ({kind}, {report.requests} requests): "
            f"{len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.deleted)} deleted",
            soft_wrap=True,
        )
        for sign, labels in (("+", report.created), ("~", report.updated), ("-", report.deleted)):
            for label in labels:
                out.print(f"  {sign} {label}", markup=False, soft_wrap=True)

    run_action(run)


@main.group("schema", cls=CommandGroup)
@common_options()
def schema_group() -> None:
    """The content model in cms_schema/ and the CMS."""


@schema_group.command(
    "push",
    epilog="""\b
Examples:
  headwater schema push --dry-run    show what would change in the space
  headwater schema push              create or update the content types""",
)
@click.option("--dry-run", is_flag=True, help="Print the differences; change nothing.")
@common_options()
@click.pass_obj
def schema_push_command(project: Path, dry_run: bool) -> None:
    """Create or update the CMS's content types and editor help texts from cms_schema/
    (needs CONTENTFUL_SPACE_ID and CONTENTFUL_MANAGEMENT_TOKEN)."""

    def run() -> None:
        # Imported here: only this command talks to the Management API.
        from headwater.contentful.management import preview_url_lines, push_schema
        from headwater.contentful.settings import ContentfulSettings

        settings = ContentfulSettings.from_env(os.environ, management=True)
        report = push_schema(Project(project.resolve()).schema_dir, settings, dry_run=dry_run)
        for line in report.lines():
            out.print(line, markup=False, soft_wrap=True)
        for line in preview_url_lines(report, os.environ):
            out.print(line, markup=False, soft_wrap=True)

    run_action(run)


@main.command(
    "validate",
    epilog="""\b
Examples:
  headwater validate                        file:line: field: [rule] message, one a line
  headwater validate --format json | jq .   one JSON object a problem: file, line, field,
                                            rule, message, value, link (the entry in the
                                            CMS's web app)""",
)
@source_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line a problem; json: one JSON object a line, on stdout.",
)
@common_options()
@click.pass_obj
def validate_command(project: Path, source: str, output_format: str) -> None:
    """Check the content (drafts too) against cms_schema/ and print every problem."""

    def validate() -> None:
        options = make_options(
            root=project,
            out="public",
            base_url=None,
            source=source,
            preview=False,
            full=False,
            drafts=True,
        )
        try:
            content, site, description = check_content(options)
        except ContentError as exc:
            if output_format != "json":
                raise
            for problem in exc.problems:
                click.echo(json.dumps(problem_json(problem), ensure_ascii=False))
            err.print(f"{exc}.", markup=False)
            sys.exit(exc.exit_code)
        done = f"{len(content.entries)} entries in {description} are valid."
        (err if output_format == "json" else out).print(done, markup=False, soft_wrap=True)

    run_action(validate)


_CMS_ORIGIN = re.compile(r"^(?P<entry>.*) \((?P<link>https?://[^\s()]+)\)$")


def problem_json(problem: Problem) -> dict[str, Any]:
    """One problem as a JSON object: a local file's path and line, or a CMS entry's name and
    its web-app link."""
    cms = _CMS_ORIGIN.match(problem.origin)
    value = problem.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = str(value)
    return {
        "file": None if cms else problem.origin,
        "entry": cms["entry"] if cms else None,
        "line": problem.line,
        "field": problem.field or None,
        "rule": problem.rule,
        "message": problem.message,
        "value": value,
        "link": cms["link"] if cms else None,
    }


@main.command(
    "doctor",
    epilog="""\b
Example:
  headwater doctor    Python, packages, the source a build would use and why, which
                      CONTENTFUL_* variables are set (never their values), whether the CMS
                      answers and the token works, whether cms_schema/ matches the space,
                      whether public/ is current""",
)
@common_options()
@click.pass_obj
def doctor_command(project: Path) -> None:
    """Say what a build would use and whether it can work; never prints a secret."""

    def run() -> None:
        from headwater.doctor import diagnose

        worst = 0
        for check in diagnose(project.resolve(), os.environ):
            mark = {"ok": "[green]  ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
            out.print(f"{mark[check.status]} ", end="")
            out.print(f"{check.name}: {check.detail}", markup=False, soft_wrap=True)
            worst = max(worst, check.exit_code)
        if worst:
            sys.exit(worst)

    run_action(run)


def run() -> None:
    """The console script: run the command, then leave without tearing the interpreter down
    (after a large build, freeing every object one by one at exit takes a quarter second)."""
    try:
        main.main(standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command(
    "new",
    epilog="""\b
Examples:
  headwater new article "Sleep and Trauma"   writes content/article/sleep-and-trauma.md
  headwater new topic Insomnia             writes content/topic/insomnia.md""",
)
@click.argument("content_type", metavar="TYPE")
@click.argument("title")
@common_options()
@click.pass_obj
def new_command(project: Path, content_type: str, title: str) -> None:
    """Write a new local entry (a draft) of TYPE from cms_schema/, help texts as comments."""

    def run() -> None:
        import datetime as dt

        from headwater.scaffold import new_entry

        path = new_entry(project.resolve(), content_type, title, today=dt.date.today())
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        out.print(
            f"Wrote {shown}: a draft (`headwater serve --drafts` shows it; delete its "
            "`draft: true` line to publish it).",
            markup=False,
            soft_wrap=True,
        )

    run_action(run)


main.add_command(serve_command)
main.add_command(preview_command)
main.add_command(webhook_command)
