"""`headwater new`: a new local entry file that is valid as written, made from `cms_schema/`.

The file names every field of the type in the model's order, each under its help text (from
`cms_schema/editor-interfaces/`) as a YAML comment: required fields with a value — the title,
a slug made from it, today's date, the first entry a link may point to — and optional ones
commented out, ready to fill in. It starts as a draft (`draft: true`): `headwater serve
--drafts` and preview builds show it, `headwater build` leaves it out until the line is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from headwater.errors import ConfigError
from headwater.markup import slugify
from headwater.schema import ContentModel, load_model


def new_entry(project: Path, content_type: str, title: str, *, today: dt.date) -> Path:
    """Write content/<type>/<slug>.md for a new entry titled `title`; return its path."""
    model = load_model(project / "cms_schema")
    if content_type not in model.types:
        raise ConfigError(
            f"cms_schema/ has no content type {content_type!r}; it has "
            f"{', '.join(sorted(model.types))}"
        )
    fields = model.fields(content_type)
    if not any(f["id"] == "slug" for f in fields):
        raise ConfigError(
            f"{content_type} entries have no slug: edit content/{content_type}.yml or the "
            "existing files of that type instead"
        )
    slug = slugify(title)
    if not slug:
        raise ConfigError(f"the title {title!r} gives no slug: use some letters or digits")
    path = project / "content" / content_type / f"{slug}.md"
    if path.exists():
        raise ConfigError(f"{path.relative_to(project)} exists already; choose another title")
    helps = _help_texts(project / "cms_schema" / "editor-interfaces" / f"{content_type}.json")
    display = model.types[content_type].get("displayField")
    lines = [
        "---",
        "# A draft: only previews show it. Delete this line to publish it.",
        "draft: true",
    ]
    body = ""
    for spec in fields:
        name = spec["id"]
        help_text = helps.get(name) or spec.get("name", name)
        comment = [f"# {line}" for line in textwrap.wrap(help_text, width=92)]
        if spec["type"] == "RichText" or (name == "body" and spec["type"] == "Text"):
            body = f"Write the {content_type} here, in Markdown.\n" if spec.get("required") else ""
            continue
        value = _value(spec, name, display, title, slug, today, _choices(project, model, spec))
        if value is None:
            lines += [*comment, f"# {name}: {_example(spec)}"]
        else:
            lines += [*comment, f"{name}: {_yaml(value)}"]
    lines.append("---")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n\n" + body, encoding="utf-8")
    return path


def _value(
    spec: Mapping[str, Any],
    name: str,
    display: str | None,
    title: str,
    slug: str,
    today: dt.date,
    choices: list[str],
) -> Any:
    """What a field starts as: None to leave it commented out."""
    if name in (display, "title", "name"):
        return title
    if name == "slug":
        return slug
    if not spec.get("required"):
        return None
    if spec["type"] == "Date":
        return today.isoformat()
    if spec["type"] == "Link" and choices:
        return choices[0]
    if spec["type"] in ("Symbol", "Text"):
        return f"One sentence on {title.rstrip('.?!')}."
    if spec["type"] == "Boolean":
        return False
    return None


def _example(spec: Mapping[str, Any]) -> str:
    kind = spec["type"]
    if kind == "Array":
        return "[]"
    if kind == "Boolean":
        return "false"
    if kind == "Date":
        return dt.date.today().isoformat()
    if kind == "Link" and spec.get("linkType") == "Asset":
        return '{file: images/example.jpg, alt: "What the image shows"}'
    return '""'


def _choices(project: Path, model: ContentModel, spec: Mapping[str, Any]) -> list[str]:
    """The slugs of the local entries a link field may point to, sorted."""
    if spec["type"] != "Link" or spec.get("linkType") != "Entry":
        return []
    allowed: list[str] = list(model.types)
    for rule in spec.get("validations", []):
        allowed = list(rule.get("linkContentType", allowed))
    return sorted(
        path.stem
        for content_type in allowed
        for path in (project / "content" / content_type).glob("*.md")
    )


def _help_texts(path: Path) -> dict[str, str]:
    try:
        controls = json.loads(path.read_text(encoding="utf-8")).get("controls", [])
    except (OSError, ValueError):
        return {}
    return {
        c["fieldId"]: c.get("settings", {}).get("helpText", "")
        for c in controls
        if isinstance(c, dict) and "fieldId" in c
    }


def _yaml(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1000)
    return text.removesuffix("\n...\n").strip()
