"""What a Contentful webhook announces: the Change it queues, which topics can alter the site,
where the payload comes from, and a batch of changes summarised in one line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PUBLISHED_ACTIONS = frozenset({"publish", "unpublish", "delete", "archive"})
"""Entry and asset actions that change what the Delivery API serves."""
DRAFT_ACTIONS = frozenset({"create", "save", "auto_save", "unarchive"})
"""Actions only a preview site shows."""
DEFAULT_ENVIRONMENT = "master"


@dataclass(frozen=True)
class Change:
    """One change a webhook announced: what it touched, at which version, and why.

    `seq` is the change's row in the receiver's journal: two deliveries of the same change are
    two rows, and a build that covers both must remove both, so it is part of the identity.
    """

    kind: str
    """Entry, Asset or ContentType (a content-type change means a full build)."""
    id: str
    topic: str
    version: int | None = None
    title: str | None = None
    seq: int | None = None

    @property
    def action(self) -> str:
        return self.topic.rsplit(".", 1)[-1]

    @property
    def full(self) -> bool:
        return self.kind == "ContentType"

    def as_dict(self) -> dict[str, Any]:
        """What the build and the build hook receive (the journal's row number stays here)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "version": self.version,
            "topic": self.topic,
            "title": self.title,
        }


def changes_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """The distinct changes in a stable order, as the build and Netlify's hook body get them.

    The same change delivered twice (two journal rows) is listed once.
    """
    ordered = sorted(changes, key=lambda c: (c.kind, c.id, c.version or 0, c.topic, c.title or ""))
    unique = {tuple(change.as_dict().items()): change.as_dict() for change in ordered}
    return list(unique.values())


def classify(topic: str, *, preview: bool) -> str | None:
    """The kind of change a topic queues, or None when it cannot change the site."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "ContentManagement":
        return None
    _, kind, action = parts
    if kind == "ContentType":
        return kind
    if kind in ("Entry", "Asset") and (
        action in PUBLISHED_ACTIONS or (preview and action in DRAFT_ACTIONS)
    ):
        return kind
    return None


def _first_text(value: object) -> str | None:
    """A field's text: the value itself, or the en-US (else first) locale's."""
    if isinstance(value, dict):
        value = value.get("en-US", next(iter(value.values()), None))
    return value if isinstance(value, str) and value.strip() else None


def parse_change(kind: str, topic: str, payload: object, *, preview: bool) -> Change:
    """The change a webhook payload describes; ValueError if it has no sys.id."""
    if not isinstance(payload, dict) or not isinstance(payload.get("sys"), dict):
        raise ValueError("the payload has no sys object")
    sys_ = payload["sys"]
    entity_id = sys_.get("id")
    if not isinstance(entity_id, str) or not entity_id:
        raise ValueError("the payload has no sys.id")
    # The Delivery API reports a published entry's sys.revision; drafts only have sys.version.
    keys = ("version",) if preview else ("revision", "publishedVersion", "version")
    version = next((sys_[key] for key in keys if isinstance(sys_.get(key), int)), None)
    fields = payload.get("fields")
    title = None
    if isinstance(fields, dict):
        title = _first_text(fields.get("title")) or _first_text(fields.get("name"))
    return Change(kind=kind, id=entity_id, topic=topic, version=version, title=title)


def _link_id(sys_: dict[str, Any], name: str) -> str | None:
    link = sys_.get(name)
    if isinstance(link, dict) and isinstance(link.get("sys"), dict):
        value = link["sys"].get("id")
        return value if isinstance(value, str) and value else None
    return None


def payload_origin(payload: object) -> tuple[str | None, str]:
    """(space id, environment id) a payload's sys names; the space is None when absent.

    Payloads from before Contentful had environments name none: those are the master's.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("sys"), dict):
        return None, DEFAULT_ENVIRONMENT
    sys_ = payload["sys"]
    return _link_id(sys_, "space"), _link_id(sys_, "environment") or DEFAULT_ENVIRONMENT


def summarise(changes: Iterable[Change], *, limit: int = 3) -> str:
    """One line for Netlify's deploy log: "Contentful: 3 entries published — A, B, C, …"."""
    ordered = changes_json(changes)
    groups: dict[tuple[str, str], int] = {}
    for change in ordered:
        key = (change["kind"], change["topic"].rsplit(".", 1)[-1])
        groups[key] = groups.get(key, 0) + 1
    nouns = {"Entry": ("entry", "entries"), "Asset": ("asset", "assets")}
    parts = []
    for (kind, action), count in groups.items():
        if kind == "ContentType":
            parts.append(f"content model {action} (full build)")
            continue
        one, many = nouns.get(kind, (kind.lower(), kind.lower() + "s"))
        done = {"auto_save": "auto-saved", "save": "saved", "create": "created"}.get(
            action, action + ("d" if action.endswith("e") else "ed")
        )
        parts.append(f"{count} {one if count == 1 else many} {done}")
    titles = list(dict.fromkeys(c["title"] for c in ordered if c["title"]))
    text = "Contentful: " + (", ".join(parts) or "no changes")
    if titles:
        text += " — " + ", ".join(titles[:limit]) + (", …" if len(titles) > limit else "")
    return text if len(text) <= 250 else text[:249] + "…"
