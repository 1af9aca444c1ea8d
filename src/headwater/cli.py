"""The `headwater` command: parse options, call one function, map errors to exit codes."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler

from headwater.build import build, check_content, pull
from headwater.config import SOURCES, Project, make_options
from headwater.errors import ContentError, HeadwaterError
from headwater.logs import HANDLER_NAME

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@click.group()
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=".",
    show_default=True,
    help="The project folder (content/, templates/, static/, cms_schema/).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each stage.")
@click.pass_context
def main(ctx: click.Context, project: Path, verbose: bool) -> None:
    """Build the Three Rivers Wellness site from Contentful or the local content/ snapshot."""
    handler: logging.Handler = (
        RichHandler(console=err, show_path=False) if err.is_terminal else logging.StreamHandler()
    )
    handler.set_name(HANDLER_NAME)  # so a long-running command can replace it
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    ctx.obj = project


source_option = click.option(
    "--source",
    type=click.Choice(SOURCES),
    default="auto",
    show_default=True,
    help="Where content comes from; auto = Contentful when CONTENTFUL_SPACE_ID is set.",
)


@main.command("build")
@source_option
@click.option("--preview", is_flag=True, help="Build drafts into a preview site (noindex).")
@click.option("--out", default=None, help="Output folder [default: public, or public-preview].")
@click.option("--base-url", default=None, help="Absolute site URL [default: $URL, else localhost].")
@click.option("--full", is_flag=True, help="Rebuild everything, ignoring the build manifest.")
@click.option(
    "--production",
    is_flag=True,
    help="Refuse to publish placeholders (the default when Netlify's CONTEXT is production).",
)
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
    """Validate the content and write the static site."""
    _run(lambda: _build(project, source, preview, out, base_url, full, production))


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
        out=out_name or ("public-preview" if preview else "public"),
        base_url=base_url,
        source=source,
        preview=preview or netlify_preview,
        full=full,
        production=production,
    )
    report = build(options)
    write = report.write
    where = report.out_dir
    if where.is_relative_to(Path.cwd()):
        where = where.relative_to(Path.cwd())
    change = (
        f"{write.written} written, {write.unchanged} unchanged, {write.removed} removed"
        if write.changed
        else "nothing changed"
    )
    out.print(
        f"Built {report.pages} pages from {report.source} in {report.seconds:.2f} s "
        f"→ {where}/ ({report.files} files: {change}; {report.rendered} pages rendered)",
        soft_wrap=True,
    )


@main.command("pull")
@click.pass_obj
def pull_command(project: Path) -> None:
    """Sync the Contentful space into the local store and print what changed."""

    def run() -> None:
        report = pull(Project(project.resolve()), os.environ)
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

    _run(run)


@main.group("schema")
def schema_group() -> None:
    """The content model in cms_schema/ and the CMS."""


@schema_group.command("push")
@click.option("--dry-run", is_flag=True, help="Print the differences; change nothing.")
@click.pass_obj
def schema_push_command(project: Path, dry_run: bool) -> None:
    """Create or update the CMS's content types and editor help texts from cms_schema/."""

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

    _run(run)


@main.command("validate")
@source_option
@click.pass_obj
def validate_command(project: Path, source: str) -> None:
    """Check the content against cms_schema/ and print every problem."""

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
        content, site, description = check_content(options)
        out.print(f"{len(content.entries)} entries in {description} are valid.")

    _run(validate)


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


def _run(action: object) -> None:
    assert callable(action)
    try:
        action()
    except ContentError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        err.print(f"{exc}; nothing was published.", markup=False)
        sys.exit(exc.exit_code)
    except HeadwaterError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)


@main.command("new")
@click.argument("content_type", metavar="TYPE")
@click.argument("title")
@click.pass_obj
def new_command(project: Path, content_type: str, title: str) -> None:
    """Write a new local entry (a draft) from cms_schema/, e.g. headwater new article "Title"."""

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

    _run(run)


@main.command("serve")
@source_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on; 0 picks a free one.",
)
@click.option("--out", "out_name", default=None, help="Output folder [default: public].")
@click.option("--drafts", is_flag=True, help="Show local entries marked draft: true.")
@click.pass_obj
def serve_command(
    project: Path, source: str, host: str, port: int, out_name: str | None, drafts: bool
) -> None:
    """Build and serve the site locally; rebuild and reload open pages on every edit."""
    # Imported here: the server's libraries would slow every other command's start.
    from headwater.serve import bind_socket, run_dev_server, site_url

    def serve() -> None:
        with bind_socket(host, port) as sock:
            options = make_options(
                root=project,
                out=out_name or "public",
                base_url=site_url(sock),
                source=source,
                preview=False,
                full=False,
                drafts=drafts,
            )
            run_dev_server(options, sock, build, announce=announce)

    def announce(url: str) -> None:
        out.print(f"Serving {url} (Ctrl-C to stop)", soft_wrap=True)

    _run(serve)


@main.command("preview")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=8788,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on; 0 picks a free one.",
)
@click.option(
    "--url",
    "public_url",
    default=None,
    help="The address editors reach it at [default: $HEADWATER_PREVIEW_URL, else the socket's].",
)
@click.pass_obj
def preview_command(project: Path, host: str, port: int, public_url: str | None) -> None:
    """The editors' live draft preview: drafts on screen seconds after a save.

    \b
    Needs CONTENTFUL_SPACE_ID, CONTENTFUL_PREVIEW_TOKEN, CONTENTFUL_WEBHOOK_SECRET (the signing
    secret of the space's preview webhook) and HEADWATER_PREVIEW_SECRET (what editors' preview
    links carry; 32 characters or more).
    """
    # Imported here: the server's libraries would slow every other command's start.
    from headwater.preview import serve_preview
    from headwater.serve import bind_socket

    def run() -> None:
        logging.getLogger("headwater").setLevel(logging.INFO)
        with bind_socket(host, port) as sock:
            serve_preview(
                project.resolve(), sock, os.environ, public_url=public_url, announce=announce
            )

    def announce(url: str) -> None:
        out.print(f"Previewing drafts at {url} (Ctrl-C to stop)", soft_wrap=True)

    _run(run)


@main.command("webhook")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on; 0 picks a free one.",
)
@click.option("--build", "build_locally", is_flag=True, help="Rebuild here for each batch.")
@click.option("--forward", metavar="URL", default=None, help="Call this build hook per batch.")
@source_option
@click.option(
    "--quiet",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds without a new change before a batch is built.",
)
@click.option(
    "--max-delay",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds after a batch's first change by which it is built anyway.",
)
@click.option(
    "--retry-min",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds the first retry of a transiently failed build waits (jittered down to half).",
)
@click.option(
    "--retry-max",
    default=600.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="The longest wait between retries; each wait doubles up to it.",
)
@click.option(
    "--alert-after",
    default=900.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a change may wait for a successful build before /healthz answers 503.",
)
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The journal's folder [default: .cache/headwater/webhook in the project].",
)
@click.option(
    "--clear-pending",
    is_flag=True,
    help="Forget every change a stopped receiver left pending, and exit.",
)
@click.option("--deploy-command", default=None, help="Shell command run after a good --build.")
@click.option("--preview", is_flag=True, help="Also rebuild on drafts (save, auto_save).")
@click.option(
    "--insecure-skip-verify",
    is_flag=True,
    help="Accept unsigned webhooks (local experiments only; no CONTENTFUL_WEBHOOK_SECRET).",
)
@click.pass_obj
def webhook_command(
    project: Path,
    host: str,
    port: int,
    build_locally: bool,
    forward: str | None,
    source: str,
    quiet: float,
    max_delay: float,
    retry_min: float,
    retry_max: float,
    alert_after: float,
    state: Path | None,
    clear_pending: bool,
    deploy_command: str | None,
    preview: bool,
    insecure_skip_verify: bool,
) -> None:
    """Receive Contentful's webhooks and rebuild (--build) or call a build hook (--forward).

    Every accepted change is journaled before the answer and built, retried if need be,
    until a build succeeds: see GET /status and GET /healthz.
    """
    # Imported here: the server's libraries would slow every other command's start.
    from headwater import receiver

    options = receiver.ReceiverOptions(
        host=host,
        port=port,
        build=build_locally,
        forward=forward,
        source=source,
        quiet=quiet,
        max_delay=max_delay,
        deploy_command=deploy_command,
        preview=preview,
        insecure=insecure_skip_verify,
        state=state,
        retry_min=retry_min,
        retry_max=retry_max,
        alert_after=alert_after,
    )

    def run() -> None:
        if clear_pending:
            count, path = receiver.clear_pending(project, state)
            out.print(f"Cleared {count} pending change(s) from {path}.", soft_wrap=True)
            return
        receiver.serve_webhooks(project, options, announce=announce)

    def announce(url: str, target: str) -> None:
        out.print(
            f"Listening on {url} (each batch goes to {target}; Ctrl-C to stop)", soft_wrap=True
        )

    _run(run)
