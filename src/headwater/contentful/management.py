"""Push the content model in cms_schema/ to a Contentful space through the Management API.

Everything is read and compared before anything is written: a push that must be refused
(a field that entries still use would disappear) changes nothing. Content types are compared
on what cms_schema/ says (name, description, displayField, each field's settings), not on what
the server adds, so a second push of the same files sends no PUT at all.

A field that disappears from cms_schema/ and that no entry uses is removed the way Contentful
requires: first marked `omitted` and activated, then marked `deleted` and activated. A field
that entries still use is refused with an explanation; to drop it on purpose, mark it
`"omitted": true` in cms_schema/, push, then `"deleted": true`, push again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from headwater.contentful.client import ContentfulClient, RefusedError
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import ConfigError, SourceError
from headwater.schema import load_model

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.contentful.management.v1+json"
FIELD_DEFAULTS: dict[str, Any] = {
    "localized": False,
    "required": False,
    "validations": [],
    "disabled": False,
    "omitted": False,
    "deleted": False,
}

Json = dict[str, Any]


@dataclass(frozen=True)
class TypeChange:
    """What a push did (or, in a dry run, would do) to one content type."""

    id: str
    status: str
    """`created`, `updated` or `unchanged`."""
    diff: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushReport:
    """Every content type of cms_schema/ and what the push did to it."""

    dry_run: bool
    types: tuple[TypeChange, ...]

    def count(self, status: str) -> int:
        return sum(1 for change in self.types if change.status == status)

    def summary(self) -> str:
        words = (
            {"created": "to create", "updated": "to update", "unchanged": "unchanged"}
            if self.dry_run
            else {s: s for s in ("created", "updated", "unchanged")}
        )
        counts = ", ".join(f"{self.count(s)} {w}" for s, w in words.items() if self.count(s))
        prefix = "Dry run, nothing written:" if self.dry_run else "Content model:"
        return f"{prefix} {counts or 'no content types'}"

    def lines(self) -> list[str]:
        """A readable account: one line per type, then its differences indented."""
        verbs = {"created": "create", "updated": "update", "unchanged": "leave unchanged"}
        out = []
        for change in self.types:
            status = f"would {verbs[change.status]}" if self.dry_run else change.status
            out.append(f"{change.id}: {status}")
            out += [f"  {line}" for line in change.diff]
        return [*out, self.summary()]


def push_schema(
    schema_dir: Path,
    settings: ContentfulSettings,
    *,
    dry_run: bool,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Create or update every content type of schema_dir and its editor help texts."""
    local = load_local_schema(schema_dir)
    client = ManagementClient(settings, session or requests.Session(), sleep=sleep)
    client.check_environment()
    plans = [_plan(client, definition) for definition in local]
    refusals = [text for plan in plans for text in plan.refusals]
    if refusals:
        raise ConfigError("schema push refused, nothing was changed:\n" + "\n".join(refusals))
    if not dry_run:
        for plan in plans:
            _apply(client, plan)
    return PushReport(
        dry_run=dry_run,
        types=tuple(TypeChange(p.local.id, p.status, tuple(p.diff)) for p in plans),
    )


PREVIEW_TYPES = ("article", "page", "topic", "author")
"""The content types whose entries have a page, and so a preview."""


def preview_url_lines(report: PushReport, env: Mapping[str, str]) -> list[str]:
    """What to paste into Contentful's Settings → Content preview, so each entry editor's
    "Open preview" button opens the entry's page on the live preview service. (The Management
    API has no public endpoint for preview platforms: they are set in the web app.)"""
    types = [t.id for t in report.types if t.id in PREVIEW_TYPES]
    if not types:
        return []
    base = env.get("HEADWATER_PREVIEW_URL", "").rstrip("/") or "https://<your preview service>"
    lines = [
        "",
        "Content preview: in Contentful, Settings → Content preview → Create preview platform,",
        "tick these content types and give each the same preview URL:",
    ]
    template = f"{base}/__preview/entry/{{entry.sys.id}}?secret=<HEADWATER_PREVIEW_SECRET>"
    lines += [f"  {type_id}: {template}" for type_id in types]
    lines.append(
        "Replace <HEADWATER_PREVIEW_SECRET> with the preview service's secret (it is not "
        "printed here)."
    )
    return lines


@dataclass(frozen=True)
class LocalType:
    """One content type as cms_schema/ defines it, with its editor controls if any."""

    id: str
    body: Json
    controls: tuple[Json, ...] | None
    path: Path


def load_local_schema(schema_dir: Path) -> list[LocalType]:
    """Every content type of the model (read by the build's own reader), with its editor
    controls from cms_schema/editor-interfaces/, those that others link to first."""
    model = load_model(schema_dir)
    types: dict[str, LocalType] = {}
    for type_id, data in model.types.items():
        body = {k: v for k, v in data.items() if k != "sys"}
        controls = None
        interface = schema_dir / "editor-interfaces" / f"{type_id}.json"
        if interface.is_file():
            controls = tuple(_read_json(interface).get("controls", []))
        types[type_id] = LocalType(type_id, body, controls, schema_dir / f"{type_id}.json")
    ordered: list[LocalType] = []

    def visit(type_id: str, seen: frozenset[str]) -> None:
        local = types[type_id]
        if local in ordered or type_id in seen:
            return
        for target in sorted(_linked_types(local.body)):
            if target in types:
                visit(target, seen | {type_id})
        ordered.append(local)

    for type_id in types:
        visit(type_id, frozenset())
    return ordered


def _read_json(path: Path) -> Json:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    return data


def _linked_types(body: Json) -> set[str]:
    found: set[str] = set()
    for fld in body.get("fields", []):
        for validation in [
            *fld.get("validations", []),
            *fld.get("items", {}).get("validations", []),
        ]:
            found.update(validation.get("linkContentType", []))
    return found


class ManagementClient:
    """The Management API calls a push or a seeding needs, over the one Contentful client (its
    retries, deadline and error messages)."""

    def __init__(
        self,
        settings: ContentfulSettings,
        session: requests.Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        host, token, variable = settings.api("management")
        self.settings = settings
        self.client = ContentfulClient(
            host,
            token,
            variable,
            settings.space,
            settings.environment,
            session,
            sleep,
            deadline=settings.deadline,
        )

    def check_environment(self) -> None:
        """SourceError naming the variables when the space or environment does not exist."""
        try:
            self.get(self.settings.environment_path, what="the space and environment")
        except RefusedError as exc:
            if exc.status != 404:
                raise
            raise SourceError(
                f"Contentful has no space {self.settings.space!r} with environment "
                f"{self.settings.environment!r} ({exc}); check CONTENTFUL_SPACE_ID and "
                "CONTENTFUL_ENVIRONMENT"
            ) from None

    def get(self, path: str, *, what: str, params: Mapping[str, Any] | None = None) -> Json:
        found = self.request("GET", path, what=what, params=params)
        assert found is not None
        return found

    def find(self, path: str, *, what: str) -> Json | None:
        """GET that answers None for 404 Not Found."""
        return self.request("GET", path, what=what, missing_ok=True)

    def put(self, path: str, body: Json | None, *, what: str, version: int | None) -> Json:
        found = self.request("PUT", path, what=what, body=body, version=version)
        assert found is not None
        return found

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        body: Json | None = None,
        version: int | None = None,
        missing_ok: bool = False,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> Json | None:
        return self.client.request(
            method,
            path,
            params=params,
            body=body,
            data=data,
            headers=headers,
            version=version,
            what=what,
            missing_ok=missing_ok,
            url=url,
        )


# Planning: read and compare only.


@dataclass
class _Plan:
    """What one content type needs; filled by _plan, carried out by _apply."""

    local: LocalType
    remote: Json | None
    desired: Json
    status: str = "unchanged"
    diff: list[str] = field(default_factory=list)
    put_type: bool = False
    activate: bool = False
    removed: list[Json] = field(default_factory=list)
    """Server fields that cms_schema/ dropped and no entry uses: omitted, then deleted."""
    refusals: list[str] = field(default_factory=list)


def _plan(client: ManagementClient, local: LocalType) -> _Plan:
    path = f"{client.settings.environment_path}/content_types/{local.id}"
    remote = client.find(path, what=f"content type {local.id}")
    desired = dict(local.body)
    remote_ids = {f.get("id") for f in (remote or {}).get("fields", [])}
    # A field already deleted in Contentful is gone from its answers: nothing left to do.
    desired["fields"] = [
        f for f in local.body.get("fields", []) if not f.get("deleted") or f.get("id") in remote_ids
    ]
    plan = _Plan(local, remote, desired)
    remote_fields = {f.get("id"): f for f in (remote or {}).get("fields", [])}
    for fld in desired["fields"]:
        if fld.get("deleted") and not remote_fields[fld.get("id")].get("omitted"):
            plan.refusals.append(
                f'{local.id}: field {fld.get("id")!r} is marked "deleted" in {local.path.name} '
                'but is not omitted in Contentful yet: first push it with "omitted": true '
                '(and without "deleted"), check the site, then mark it deleted'
            )
    if remote is None:
        plan.status, plan.put_type, plan.activate = "created", True, True
        plan.diff = [f"+ field {f['id']}: {_describe(f)}" for f in desired["fields"]]
    else:
        plan.diff = _type_diff(remote, desired)
        plan.put_type = bool(plan.diff)
        local_ids = {f.get("id") for f in desired["fields"]}
        for gone in remote.get("fields", []):
            if gone.get("id") not in local_ids:
                _plan_removal(client, plan, gone)
        sys = remote.get("sys", {})
        if not plan.put_type and sys.get("version") != (sys.get("publishedVersion") or -9) + 1:
            plan.diff.append("~ activate the content type (it has changes not yet active)")
        plan.activate = bool(plan.diff)
    plan.diff += _controls_diff(client, plan)
    if plan.diff and plan.status == "unchanged":
        plan.status = "updated"
    return plan


def _plan_removal(client: ManagementClient, plan: _Plan, gone: Json) -> None:
    type_id, field_id = plan.local.id, gone.get("id")
    result = client.get(
        f"{client.settings.environment_path}/entries",
        what=f"entries of {type_id} using field {field_id}",
        params={"content_type": type_id, f"fields.{field_id}[exists]": "true", "limit": 0},
    )
    total = int(result.get("total", 0))
    if total == 0:
        plan.removed.append(gone)
        plan.diff.append(f"- field {field_id}: {_describe(gone)} (no entry uses it)")
        return
    entries = f"{total} entr{'y' if total == 1 else 'ies'}"
    plan.refusals.append(
        f"{type_id}: field {field_id!r} ({gone.get('name', field_id)}) is no longer in "
        f"{plan.local.path.name}, but {entries} of type {type_id} still have a value in it; "
        "removing the field would delete that content. To remove it on purpose, follow "
        f'Contentful\'s safe path: keep the field in {plan.local.path.name} with "omitted": true '
        "and push (it leaves the API responses but keeps its data), check the site, then set "
        '"deleted": true and push again. Or first clear the field in those entries.'
    )


def _normal_field(fld: Mapping[str, Any], keys: Sequence[str] | None = None) -> Json:
    values = {k: v for k, v in fld.items() if v is not None}
    for key, default in FIELD_DEFAULTS.items():
        values.setdefault(key, default)
    if isinstance(values.get("items"), dict):
        values["items"] = {"validations": [], **values["items"]}
    return {k: values.get(k) for k in keys} if keys is not None else values


def _type_diff(remote: Json, desired: Json) -> list[str]:
    diff = []
    for key in ("name", "description", "displayField"):
        before, after = remote.get(key) or "", desired.get(key) or ""
        if before != after:
            diff.append(f"~ {key}: {_short(before)} → {_short(after)}")
    remote_fields = {f.get("id"): f for f in remote.get("fields", [])}
    for fld in desired.get("fields", []):
        old = remote_fields.get(fld.get("id"))
        if old is None:
            diff.append(f"+ field {fld['id']}: {_describe(fld)}")
            continue
        new = _normal_field(fld)
        before = _normal_field(old, list(new))
        for key in new:
            if new[key] != before[key]:
                shown = (
                    f"{_short(before[key])} → {_short(new[key])}"
                    if not isinstance(new[key], list | dict)
                    else "changed"
                )
                diff.append(f"~ field {fld['id']}: {key} {shown}")
    kept = [f.get("id") for f in remote.get("fields", []) if f.get("id") in _ids(desired)]
    if not diff and kept != [i for i in _ids(desired) if i in remote_fields]:
        diff.append("~ field order")
    return diff


def _ids(body: Json) -> list[Any]:
    return [f.get("id") for f in body.get("fields", [])]


def _describe(fld: Mapping[str, Any]) -> str:
    kind = str(fld.get("type"))
    if fld.get("linkType"):
        kind += f" to {fld['linkType']}"
    items = fld.get("items")
    if isinstance(items, dict):
        kind += f" of {items.get('type')}" + (
            f" to {items['linkType']}" if items.get("linkType") else ""
        )
    return kind + (", required" if fld.get("required") else "")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _controls_diff(client: ManagementClient, plan: _Plan) -> list[str]:
    if plan.local.controls is None:
        return []
    fields = set(_ids(plan.desired))
    wanted = [c for c in plan.local.controls if c.get("fieldId") in fields]
    remote = None
    if plan.remote is not None:
        remote = client.find(_interface_path(client, plan.local.id), what="its editor interface")
    if remote is None:
        return [f"+ editor controls and help texts for {len(wanted)} fields"]
    current = {c.get("fieldId"): c for c in remote.get("controls", [])}
    diff = []
    for control in wanted:
        fid = control.get("fieldId")
        old = current.get(fid) or {}
        if _control_key(old) == _control_key(control):
            continue
        if old.get("widgetId") != control.get("widgetId"):
            diff.append(f"~ editor of {fid}: {old.get('widgetId')} → {control.get('widgetId')}")
        elif (old.get("settings") or {}).get("helpText") != control.get("settings", {}).get(
            "helpText"
        ):
            diff.append(f"~ help text of {fid}")
        else:
            diff.append(f"~ editor settings of {fid}")
    return diff


def _control_key(control: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (
        control.get("widgetId"),
        control.get("widgetNamespace") or "builtin",
        control.get("settings") or {},
    )


def _interface_path(client: ManagementClient, type_id: str) -> str:
    return f"{client.settings.environment_path}/content_types/{type_id}/editor_interface"


# Applying: the writes, in the order Contentful needs them.


def _apply(client: ManagementClient, plan: _Plan) -> None:
    if plan.status == "unchanged":
        return
    type_id = plan.local.id
    path = f"{client.settings.environment_path}/content_types/{type_id}"
    what = f"content type {type_id}"
    version = plan.remote["sys"]["version"] if plan.remote is not None else None
    if plan.removed:
        omitted = [{**f, "omitted": True} for f in plan.removed]
        body = {**plan.desired, "fields": [*plan.desired["fields"], *omitted]}
        version = _put_and_activate(client, path, body, version, what)
        deleted = [{**f, "deleted": True} for f in omitted]
        body = {**plan.desired, "fields": [*plan.desired["fields"], *deleted]}
        version = _put_and_activate(client, path, body, version, what)
    elif plan.put_type:
        version = _put_and_activate(client, path, plan.desired, version, what)
    elif plan.activate:
        client.put(f"{path}/published", None, what=f"activating {what}", version=version)
    if plan.local.controls is not None:
        _apply_controls(client, plan)


def _put_and_activate(
    client: ManagementClient, path: str, body: Json, version: int | None, what: str
) -> int:
    log.info("saving %s", what)
    saved = client.put(path, body, what=f"saving {what}", version=version)
    log.info("activating %s", what)
    active = client.put(
        f"{path}/published", None, what=f"activating {what}", version=saved["sys"]["version"]
    )
    return int(active["sys"]["version"])


def _apply_controls(client: ManagementClient, plan: _Plan) -> None:
    """Set our controls, keep the server's for other fields and every other setting."""
    path = _interface_path(client, plan.local.id)
    remote = client.get(path, what=f"the editor interface of {plan.local.id}")
    fields = set(_ids(plan.desired))
    wanted = {c["fieldId"]: c for c in plan.local.controls or () if c.get("fieldId") in fields}
    controls = [wanted.pop(c.get("fieldId"), c) for c in remote.get("controls", [])]
    controls += wanted.values()
    current = [_control_key(c) for c in remote.get("controls", [])]
    if [_control_key(c) for c in controls] == current:
        return
    body = {k: v for k, v in remote.items() if k != "sys"} | {"controls": controls}
    log.info("setting the editor interface of %s", plan.local.id)
    client.put(
        path,
        body,
        what=f"the editor interface of {plan.local.id}",
        version=remote["sys"]["version"],
    )


def model_differences(schema_dir: Path, remote_types: Sequence[Json]) -> dict[str, list[str]]:
    """How a space's content types (as its Delivery or Management API lists them) differ
    from cms_schema/, by type id, in the lines a dry-run push shows; matching types are left
    out, and a type the space lacks says so."""
    remote = {str(t.get("sys", {}).get("id")): t for t in remote_types}
    found: dict[str, list[str]] = {}
    for local in load_local_schema(schema_dir):
        desired = dict(local.body)
        desired["fields"] = [f for f in local.body.get("fields", []) if not f.get("deleted")]
        if local.id not in remote:
            found[local.id] = ["not in the space (headwater schema push creates it)"]
            continue
        diff = _type_diff(remote[local.id], desired)
        local_ids = set(_ids(desired))
        diff += [
            f"- field {f.get('id')}: in the space only"
            for f in remote[local.id].get("fields", [])
            if f.get("id") not in local_ids and not f.get("omitted")
        ]
        if diff:
            found[local.id] = diff
    return found
