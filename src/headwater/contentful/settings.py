"""Which Contentful space and environment to speak to, with which tokens, on which hosts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from headwater.errors import ConfigError

DELIVERY_HOST = "cdn.contentful.com"
PREVIEW_HOST = "preview.contentful.com"
MANAGEMENT_HOST = "api.contentful.com"
WEB_APP = "https://app.contentful.com"
DEADLINE = 60.0
"""Seconds one request may take, retries and all, before the build gives up (exit 3)."""


@dataclass(frozen=True)
class ContentfulSettings:
    """One space environment and how to reach its Delivery, Preview and Management APIs. The
    tokens never appear in repr, messages or logs."""

    space: str
    environment: str = "master"
    delivery_token: str | None = field(default=None, repr=False)
    preview_token: str | None = field(default=None, repr=False)
    management_token: str | None = field(default=None, repr=False)
    host: str = f"https://{DELIVERY_HOST}"
    preview_host: str = f"https://{PREVIEW_HOST}"
    management_host: str = f"https://{MANAGEMENT_HOST}"
    locale: str | None = None
    """The locale to read; None means the space's default locale."""
    deadline: float = DEADLINE

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, preview: bool = False, management: bool = False
    ) -> ContentfulSettings:
        """Settings from CONTENTFUL_* variables; ConfigError names a missing or bad one.

        The token the use needs must be set: the delivery token, or with `preview` the preview
        token, or with `management` the management token.
        """
        space = env.get("CONTENTFUL_SPACE_ID", "").strip()
        if management:
            needed = "CONTENTFUL_MANAGEMENT_TOKEN"
        else:
            needed = "CONTENTFUL_PREVIEW_TOKEN" if preview else "CONTENTFUL_DELIVERY_TOKEN"
        token = env.get(needed, "").strip()
        if not space and not token:
            raise ConfigError(
                f"CONTENTFUL_SPACE_ID and {needed} are not set: the id of the Contentful space "
                "and an API key of it"
            )
        if not space:
            raise ConfigError("CONTENTFUL_SPACE_ID is not set: the id of the Contentful space")
        if not token:
            raise ConfigError(f"{needed} is not set: an API key of space {space!r}")
        raw_deadline = env.get("CONTENTFUL_TIMEOUT", "").strip()
        try:
            deadline = float(raw_deadline) if raw_deadline else DEADLINE
        except ValueError:
            deadline = -1.0
        if not deadline > 0:
            raise ConfigError(
                f"CONTENTFUL_TIMEOUT must be a number of seconds, not {raw_deadline!r}"
            )
        return cls(
            space=space,
            environment=env.get("CONTENTFUL_ENVIRONMENT", "").strip() or "master",
            delivery_token=env.get("CONTENTFUL_DELIVERY_TOKEN", "").strip() or None,
            preview_token=env.get("CONTENTFUL_PREVIEW_TOKEN", "").strip() or None,
            management_token=env.get("CONTENTFUL_MANAGEMENT_TOKEN", "").strip() or None,
            host=base_url(env.get("CONTENTFUL_HOST", ""), DELIVERY_HOST, "CONTENTFUL_HOST"),
            preview_host=base_url(
                env.get("CONTENTFUL_PREVIEW_HOST", ""), PREVIEW_HOST, "CONTENTFUL_PREVIEW_HOST"
            ),
            management_host=base_url(
                env.get("CONTENTFUL_MANAGEMENT_HOST", ""),
                MANAGEMENT_HOST,
                "CONTENTFUL_MANAGEMENT_HOST",
            ),
            locale=env.get("CONTENTFUL_LOCALE", "").strip() or None,
            deadline=deadline,
        )

    def api(self, kind: str) -> tuple[str, str, str]:
        """(base URL, token, the token's variable) of the `delivery`, `preview` or
        `management` API; ConfigError when its token is not set."""
        host, token, variable = {
            "delivery": (self.host, self.delivery_token, "CONTENTFUL_DELIVERY_TOKEN"),
            "preview": (self.preview_host, self.preview_token, "CONTENTFUL_PREVIEW_TOKEN"),
            "management": (
                self.management_host,
                self.management_token,
                "CONTENTFUL_MANAGEMENT_TOKEN",
            ),
        }[kind]
        if not token:
            raise ConfigError(f"{variable} is not set: an API key of space {self.space!r}")
        return host, token, variable

    @property
    def description(self) -> str:
        return f"Contentful space {self.space}/{self.environment}"

    @property
    def web_app(self) -> str:
        """The space environment in Contentful's web app, where editors find an entry."""
        return f"{WEB_APP}/spaces/{self.space}/environments/{self.environment}"

    @property
    def environment_path(self) -> str:
        return f"/spaces/{self.space}/environments/{self.environment}"


def base_url(value: str, default_host: str, variable: str) -> str:
    """A host name means https://host; a value with a scheme is a base URL used as given (so
    tests can point at http://127.0.0.1:PORT)."""
    value = value.strip() or default_host
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"{variable} must be a host name or an http(s) base URL, not {value!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{variable} must not carry credentials; tokens go in *_TOKEN")
    return value.rstrip("/")
