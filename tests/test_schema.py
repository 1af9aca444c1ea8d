"""The model's rules are Contentful's, applied to any source; links resolve to objects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from support import REPO, raw, validate

from headwater.errors import ConfigError
from headwater.model import RawEntry, snapshot_of
from headwater.schema import ContentModel, load_model

SETTINGS = raw("settings", "siteSettings", {"siteName": "S"}, "settings.yml")


def model_with(*fields: dict[str, Any]) -> ContentModel:
    return ContentModel(
        {
            "thing": {"sys": {"id": "thing"}, "fields": list(fields)},
            "siteSettings": {
                "sys": {"id": "siteSettings"},
                "fields": [{"id": "siteName", "type": "Symbol"}],
            },
        }
    )


def problems(model: ContentModel, *entries: RawEntry) -> list[str]:
    _, found = validate(snapshot_of([*entries, SETTINGS]), model)
    return [f"{p.field}:{p.rule}" for p in found]


def thing(**fields: Any) -> RawEntry:
    return raw(f"thing/{len(fields)}", "thing", fields, "thing.md")


def test_range_in_and_date_range() -> None:
    model = model_with(
        {"id": "n", "type": "Integer", "validations": [{"range": {"min": 1, "max": 5}}]},
        {"id": "c", "type": "Symbol", "validations": [{"in": ["red", "green"]}]},
        {"id": "d", "type": "Date", "validations": [{"dateRange": {"min": "2020-01-01"}}]},
    )
    assert problems(model, thing(n=3, c="red", d=dt.date(2021, 1, 1))) == []
    assert problems(model, thing(n=9, c="blue", d="2019-05-01")) == [
        "n:range",
        "c:in",
        "d:dateRange",
    ]


def test_regexp_flags_and_prohibit_regexp() -> None:
    model = model_with(
        {
            "id": "a",
            "type": "Symbol",
            "validations": [{"regexp": {"pattern": "^abc$", "flags": "i"}}],
        },
        {"id": "b", "type": "Symbol", "validations": [{"prohibitRegexp": {"pattern": "bad"}}]},
    )
    assert problems(model, thing(a="ABC", b="good")) == []
    assert problems(model, thing(a="abd", b="so bad")) == ["a:regexp", "b:prohibitRegexp"]


def test_contentful_link_objects_resolve_by_id() -> None:
    model = model_with(
        {"id": "name", "type": "Symbol"},
        {
            "id": "friend",
            "type": "Link",
            "linkType": "Entry",
            "validations": [{"linkContentType": ["thing"]}],
        },
    )
    a = raw("a1", "thing", {"name": "A"}, "a")
    b = raw(
        "b1",
        "thing",
        {"name": "B", "friend": {"sys": {"type": "Link", "linkType": "Entry", "id": "a1"}}},
        "b",
    )
    content, found = validate(snapshot_of([a, b, SETTINGS]), model)
    assert found == [] and content is not None
    resolved = next(e for e in content.entries if e.id == "b1")
    assert resolved.friend.name == "A"


def test_array_size_counts_items_and_checks_each_item() -> None:
    model = model_with(
        {
            "id": "tags",
            "type": "Array",
            "items": {"type": "Symbol", "validations": [{"size": {"max": 3}}]},
            "validations": [{"size": {"max": 2}}],
        }
    )
    assert problems(model, thing(tags=["a", "b"])) == []
    assert problems(model, thing(tags=["a", "b", "long"])) == ["tags[2]:size", "tags:size"]


def test_settings_must_be_a_single_entry() -> None:
    model = model_with({"id": "name", "type": "Symbol"})
    _, found = validate(snapshot_of([]), model)
    assert [p.rule for p in found] == ["singleton"]


def test_repo_model_has_its_six_types_with_help_texts() -> None:
    model = load_model(REPO / "cms_schema")
    assert set(model.types) == {"article", "author", "topic", "page", "redirect", "siteSettings"}
    for type_id, data in model.types.items():
        assert data["displayField"] in {f["id"] for f in data["fields"]}
        editor = json.loads(
            (REPO / "cms_schema" / "editor-interfaces" / f"{type_id}.json").read_text()
        )
        helped = {c["fieldId"] for c in editor["controls"] if c.get("settings", {}).get("helpText")}
        assert helped == {f["id"] for f in data["fields"]}, type_id


def test_malformed_model_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"name": "no sys"}')
    with pytest.raises(ConfigError, match="bad.json"):
        load_model(tmp_path)
