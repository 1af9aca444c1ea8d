"""Set up the webhook receiver: refuse a configuration that cannot work, before listening, then
wire the journal, the builder and the rebuild queue together and serve until stopped."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from headwater.builders import Forwarder, SubprocessBuilder, check_hook_url, failure_of
from headwater.changes import DEFAULT_ENVIRONMENT, Change
from headwater.coalesce import Backoff, RebuildQueue
from headwater.config import Project, resolve_source
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import ConfigError
from headwater.journal import journal_in
from headwater.logs import use_service_logging
from headwater.serve import bind_socket
from headwater.webhook import ALERT_AFTER, MAX_DELAY, QUIET, Receiver, require_secret, run_receiver

log = logging.getLogger(__name__)

RETRY_MIN = 10.0
RETRY_MAX = 600.0


@dataclass(frozen=True)
class ReceiverOptions:
    """The `headwater webhook` command's options."""

    host: str = "127.0.0.1"
    port: int = 8787
    build: bool = False
    forward: str | None = None
    source: str = "auto"
    quiet: float = QUIET
    max_delay: float = MAX_DELAY
    deploy_command: str | None = None
    preview: bool = False
    insecure: bool = False
    state: Path | None = None
    """The journal's folder; None: <project>/.cache/headwater/webhook."""
    retry_min: float = RETRY_MIN
    retry_max: float = RETRY_MAX
    alert_after: float = ALERT_AFTER


def state_dir(project: Path, state: Path | None) -> Path:
    return (state or Project(project.resolve()).cache_dir / "webhook").resolve()


@dataclass(frozen=True)
class _Plan:
    """A checked configuration: what a batch goes to, and what to say about it."""

    builder: Forwarder | SubprocessBuilder
    target: str
    secret: str | None
    space: str | None
    environment: str
    secrets: tuple[str, ...]
    """Strings no log line may show (the parts of a build hook's URL)."""


def _plan(project: Path, options: ReceiverOptions, env: Mapping[str, str]) -> _Plan:
    """Check everything that can be checked before listening; ConfigError names what is wrong."""
    if options.build == (options.forward is not None):
        raise ConfigError("give exactly one of --build and --forward URL")
    if options.deploy_command and not options.build:
        raise ConfigError("--deploy-command only runs after a --build build")
    if options.source != "auto" and not options.build:
        raise ConfigError("--source only applies to --build (a build hook builds from its own)")
    if options.retry_max < options.retry_min:
        raise ConfigError("--retry-max must not be less than --retry-min")
    secret = require_secret(env, options.insecure)
    space = env.get("CONTENTFUL_SPACE_ID", "").strip() or None
    environment = env.get("CONTENTFUL_ENVIRONMENT", "").strip() or DEFAULT_ENVIRONMENT
    if options.forward is not None:
        url = check_hook_url(options.forward)
        forwarder = Forwarder(url)
        return _Plan(
            forwarder,
            f"the build hook at {forwarder.host}",
            secret,
            space,
            environment,
            _url_secrets(url),
        )
    source = resolve_source(options.source, env)
    if source == "contentful":
        ContentfulSettings.from_env(env, preview=options.preview)
        what = f"Contentful space {space}/{environment}"
    elif options.source == "auto":
        raise ConfigError(
            "--build has nothing to build from: CONTENTFUL_SPACE_ID is not set. Set it (and "
            "CONTENTFUL_DELIVERY_TOKEN) to build from Contentful, or pass --source local to "
            "build the project's content/ folder."
        )
    else:
        content = Project(project.resolve()).content_dir
        if not content.is_dir():
            raise ConfigError(f"--source local needs a content folder, and {content} is none")
        what = "content/"
    builder = SubprocessBuilder(
        project.resolve(),
        source=source,
        preview=options.preview,
        deploy_command=options.deploy_command,
    )
    return _Plan(builder, f"a local build from {what}", secret, space, environment, ())


def _url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a build-hook URL that must not be logged: all but scheme and host."""
    parts = urlsplit(url)
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    candidates = [url, path_query, parts.query, parts.password or "", parts.username or ""]
    if len(parts.path) > 1:
        candidates.append(parts.path)
    return tuple(c for c in candidates if c)


def serve_webhooks(
    project: Path,
    options: ReceiverOptions,
    *,
    env: Mapping[str, str] | None = None,
    announce: Callable[[str, str], None] | None = None,
) -> None:
    """Check the configuration, then receive webhooks until SIGTERM or Ctrl-C.

    `announce(url, target)` is called once the receiver listens.
    """
    env = os.environ if env is None else env
    plan = _plan(project, options, env)
    use_service_logging(secrets=plan.secrets)
    builder = plan.builder
    try:
        with journal_in(state_dir(project, options.state)) as journal:
            queue: RebuildQueue[Change, object] = RebuildQueue(
                builder,
                quiet=options.quiet,
                max_delay=options.max_delay,
                name="webhook-builds",
                classify=failure_of,
                backoff=Backoff(base=options.retry_min, cap=options.retry_max),
            )
            receiver = Receiver(
                queue=queue,
                journal=journal,
                secret=plan.secret,
                preview=options.preview,
                mode="forward" if options.forward else "build",
                target=plan.target,
                space=plan.space,
                environment=plan.environment,
                alert_after=options.alert_after,
            )
            log.info("receiver: each batch goes to %s; journal %s", plan.target, journal.path)
            if plan.space is None:
                log.info("CONTENTFUL_SPACE_ID is not set: webhooks from any space are accepted")
            else:
                log.info("accepting webhooks of space %s/%s only", plan.space, plan.environment)
            on_timeout = builder.terminate if isinstance(builder, SubprocessBuilder) else None
            with bind_socket(options.host, options.port) as sock:
                run_receiver(
                    receiver,
                    sock,
                    announce=None if announce is None else lambda url: announce(url, plan.target),
                    on_timeout=on_timeout,
                )
    finally:
        if isinstance(builder, Forwarder):
            builder.close()


def clear_pending(project: Path, state: Path | None) -> tuple[int, Path]:
    """Forget every pending change of a stopped receiver; (how many, the journal's path)."""
    with journal_in(state_dir(project, state)) as journal:
        return journal.clear(), Path(journal.path)
