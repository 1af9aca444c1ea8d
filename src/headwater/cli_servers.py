"""The long-running commands: `serve` (the dev server), `preview` (the editors' live draft
preview) and `webhook` (the rebuild-on-publish receiver)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from headwater.build import build
from headwater.cli_base import common_options, out, output_folder, run_action, source_option
from headwater.config import BuildOptions, make_options


@click.command(
    "serve",
    epilog="""\b
Examples:
  headwater serve                   http://127.0.0.1:8000/, from content/ or Contentful
  headwater serve --drafts -v       local drafts too, and each stage of each rebuild logged
  headwater serve --port 0          any free port (the first line says which)

The site is built into .cache/headwater/serve/ (never public/), with the server's own
address as its base URL; public/ stays as the last `headwater build` left it.""",
)
@source_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on; 0 picks a free one.",
)
@click.option(
    "--out",
    "out_name",
    default=None,
    help="Output folder, relative to the current folder [default: .cache/headwater/serve/site].",
)
@click.option("--drafts", is_flag=True, help="Show local entries marked draft: true.")
@common_options()
@click.pass_obj
def serve_command(
    project: Path, source: str, host: str, port: int, out_name: str | None, drafts: bool
) -> None:
    """Build and serve the site locally; rebuild and reload open pages on every edit."""
    # Imported here: the server's libraries would slow every other command's start.
    from headwater.serve import (
        bind_socket,
        check_configuration,
        run_dev_server,
        serve_folder,
        site_url,
    )

    def serve() -> None:
        def options_for(base_url: str) -> BuildOptions:
            return make_options(
                root=project,
                out=output_folder(out_name, str(serve_folder(project.resolve()))),
                base_url=base_url,
                source=source,
                preview=False,
                full=False,
                drafts=drafts,
            )

        # Everything a build needs from its configuration, checked before listening.
        check_configuration(options_for(f"http://{host}:{port}"), os.environ)
        with bind_socket(host, port) as sock:
            run_dev_server(options_for(site_url(sock)), sock, build, announce=announce)

    def announce(url: str) -> None:
        out.print(f"Serving {url} (Ctrl-C to stop)", soft_wrap=True)

    # The server's own lines (where it listens, each build) by default; each stage with -v.
    run_action(serve, chatty=("headwater.serve",))


@click.command(
    "preview",
    epilog="""\b
Example:
  CONTENTFUL_SPACE_ID=… CONTENTFUL_PREVIEW_TOKEN=… CONTENTFUL_WEBHOOK_SECRET=… \\
  HEADWATER_PREVIEW_SECRET=… headwater preview --host 0.0.0.0 --port 8788 \\
    --url https://preview.example.clinic""",
)
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
@common_options()
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
        with bind_socket(host, port) as sock:
            serve_preview(
                project.resolve(), sock, os.environ, public_url=public_url, announce=announce
            )

    def announce(url: str) -> None:
        out.print(f"Previewing drafts at {url} (Ctrl-C to stop)", soft_wrap=True)

    run_action(run, level=logging.INFO)


@click.command(
    "webhook",
    epilog="""\b
Examples:
  headwater webhook --forward "$NETLIFY_BUILD_HOOK_URL"    verify, journal, call Netlify
  headwater webhook --build --deploy-command "rsync -a public/ host:/srv/site/"
  headwater webhook --clear-pending                       forget what a stopped one left""",
)
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
@common_options(long_quiet=False)
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

    run_action(run, level=logging.INFO)
