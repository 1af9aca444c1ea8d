"""`headwater schema push` creates, updates and activates content types through the CMA."""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from headwater.contentful.management import MEDIA_TYPE, push_schema
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import ConfigError, SourceError

FIXTURES = Path(__file__).parent / "fixtures" / "contentful"
SCHEMA = Path(__file__).resolve().parent.parent / "cms_schema"
TOKEN = "CFPAT-secret-management-token"
SPACE = "yadj1kx9rmg0"
BASE = "https://api.contentful.com"
ENV_PATH = f"/spaces/{SPACE}/environments/master"
SETTINGS = ContentfulSettings(space=SPACE, environment="master", management_token=TOKEN)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def no_sleep(seconds: float) -> None:
    pass


class FakeManagementApi:
    """The Management API's content type, editor interface and entry-search endpoints.

    Answers in the shapes of tests/fixtures/contentful/management-*.json, keeps versions as
    Contentful does (every save and every activation adds one; a write must name the
    current version), and records every write.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.published: dict[str, dict[str, Any]] = {}
        self.interfaces: dict[str, dict[str, Any]] = {}
        self.in_use: dict[tuple[str, str], int] = {}
        self.writes: list[tuple[str, str, str | None]] = []
        type_path = re.escape(f"{BASE}{ENV_PATH}/content_types/") + r"([^/?]+)"
        mock.add(responses.GET, f"{BASE}{ENV_PATH}", json=fixture("management-environment.json"))
        mock.add_callback(responses.GET, re.compile(type_path + r"$"), self.get_type)
        mock.add_callback(responses.PUT, re.compile(type_path + r"$"), self.put_type)
        mock.add_callback(responses.PUT, re.compile(type_path + "/published$"), self.publish)
        mock.add_callback(
            responses.GET, re.compile(type_path + "/editor_interface$"), self.get_interface
        )
        mock.add_callback(
            responses.PUT, re.compile(type_path + "/editor_interface$"), self.put_interface
        )
        mock.add_callback(
            responses.GET, re.compile(re.escape(f"{BASE}{ENV_PATH}/entries") + r"\?"), self.entries
        )

    @staticmethod
    def type_id(request: Any) -> str:
        return str(urlsplit(request.url).path.split("/content_types/")[1].split("/")[0])

    def record(self, request: Any) -> None:
        path = urlsplit(request.url).path.removeprefix(ENV_PATH)
        self.writes.append((request.method, path, request.headers.get("X-Contentful-Version")))
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"

    @staticmethod
    def answer(status: int, body: Any) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": MEDIA_TYPE}, json.dumps(body)

    def conflict(self, request: Any, current: int | None) -> tuple[int, dict[str, str], str] | None:
        sent = request.headers.get("X-Contentful-Version")
        if current is not None and sent != str(current):
            return self.answer(409, fixture("management-error-version-mismatch.json"))
        return None

    def get_type(self, request: Any) -> tuple[int, dict[str, str], str]:
        found = self.types.get(self.type_id(request))
        if found is None:
            return self.answer(404, fixture("management-error-not-found.json"))
        return self.answer(200, found)

    def put_type(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.record(request)
        assert request.headers["Content-Type"] == MEDIA_TYPE
        type_id, body = self.type_id(request), json.loads(request.body)
        old = self.types.get(type_id)
        refused = self.conflict(request, old["sys"]["version"] if old else None)
        if refused:
            return refused
        published = {f["id"]: f for f in self.published.get(type_id, {}).get("fields", [])}
        for fld in body["fields"]:
            if fld.get("deleted") and not published.get(fld["id"], {}).get("omitted"):
                return self.answer(422, fixture("management-error-validation-failed.json"))
        stored = copy.deepcopy(fixture("management-content-type.json"))
        if old:
            stored["sys"] = {**old["sys"], "version": old["sys"]["version"] + 1}
        else:
            stored["sys"].update(id=type_id, version=1)
            for key in ("publishedVersion", "publishedAt", "firstPublishedAt", "publishedBy"):
                del stored["sys"][key]
            stored["sys"]["publishedCounter"] = 0
        stored.update(
            name=body["name"],
            description=body.get("description"),
            displayField=body.get("displayField"),
            fields=[f for f in body["fields"] if not f.get("deleted")],
        )
        self.types[type_id] = stored
        return self.answer(200 if old else 201, stored)

    def publish(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.record(request)
        type_id = self.type_id(request)
        stored = self.types[type_id]
        refused = self.conflict(request, stored["sys"]["version"])
        if refused:
            return refused
        version = stored["sys"]["version"]
        stored["sys"].update(publishedVersion=version, version=version + 1)
        self.published[type_id] = copy.deepcopy(stored)
        interface = self.interfaces.get(type_id)
        if interface is None:
            interface = copy.deepcopy(fixture("management-editor-interface.json"))
            interface["sys"]["contentType"]["sys"]["id"] = type_id
            interface["controls"] = []
        else:
            interface["sys"]["version"] += 1
        # Contentful keeps one control per field, with a default widget for new fields.
        ids = [f["id"] for f in stored["fields"]]
        controls = {c["fieldId"]: c for c in interface["controls"]}
        interface["controls"] = [
            controls.get(i, {"fieldId": i, "widgetId": "singleLine", "widgetNamespace": "builtin"})
            for i in ids
        ]
        self.interfaces[type_id] = interface
        return self.answer(200, stored)

    def get_interface(self, request: Any) -> tuple[int, dict[str, str], str]:
        found = self.interfaces.get(self.type_id(request))
        if found is None:
            return self.answer(404, fixture("management-error-not-found.json"))
        return self.answer(200, found)

    def put_interface(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.record(request)
        assert request.headers["Content-Type"] == MEDIA_TYPE
        type_id = self.type_id(request)
        old = self.interfaces[type_id]
        refused = self.conflict(request, old["sys"]["version"])
        if refused:
            return refused
        body = json.loads(request.body)
        assert "sys" not in body and body["sidebar"] == old["sidebar"], "the rest is kept"
        old.update(controls=body["controls"])
        old["sys"]["version"] += 1
        return self.answer(200, old)

    def entries(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        (type_id,) = query["content_type"]
        assert query["limit"] == ["0"]
        (key,) = [k for k in query if k.startswith("fields.")]
        assert key.endswith("[exists]") and query[key] == ["true"]
        field_id = key.removeprefix("fields.").removesuffix("[exists]")
        body = fixture("management-entries-using-field.json")
        body["total"] = self.in_use.get((type_id, field_id), 0)
        return self.answer(200, body)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def api(mock: responses.RequestsMock) -> FakeManagementApi:
    return FakeManagementApi(mock)


@pytest.fixture
def schema(tmp_path: Path) -> Path:
    target = tmp_path / "cms_schema"
    shutil.copytree(SCHEMA, target)
    return target


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def push(schema: Path, *, dry_run: bool = False) -> Any:
    return push_schema(
        schema, SETTINGS, dry_run=dry_run, session=requests.Session(), sleep=no_sleep
    )


def test_push_creates_then_updates_then_changes_nothing(
    schema: Path, api: FakeManagementApi
) -> None:
    report = push(schema)
    assert [(t.id, t.status) for t in report.types] == [
        ("author", "created"),
        ("topic", "created"),
        ("article", "created"),
        ("page", "created"),
        ("redirect", "created"),
        ("siteSettings", "created"),
    ], "types that others link to come first"
    assert api.writes[:3] == [
        ("PUT", "/content_types/author", None),
        ("PUT", "/content_types/author/published", "1"),
        ("PUT", "/content_types/author/editor_interface", "1"),
    ]
    assert len(api.writes) == 18
    assert api.types["article"]["sys"]["publishedVersion"] == 1
    help_texts = {
        c["fieldId"]: c["settings"]["helpText"] for c in api.interfaces["article"]["controls"]
    }
    assert help_texts["slug"].startswith("The last part of the web address.")
    assert report.summary() == "Content model: 6 created"

    def longer_summaries(data: dict[str, Any]) -> None:
        summary = next(f for f in data["fields"] if f["id"] == "summary")
        summary["validations"][0]["size"]["max"] = 200
        summary["name"] = "Teaser"

    edit(schema / "article.json", longer_summaries)
    api.writes.clear()
    report = push(schema)
    article = next(t for t in report.types if t.id == "article")
    assert article.status == "updated"
    assert article.diff == (
        '~ field summary: name "Summary" → "Teaser"',
        "~ field summary: validations changed",
    )
    assert api.writes == [
        ("PUT", "/content_types/article", "2"),
        ("PUT", "/content_types/article/published", "3"),
    ], "the editor interface already says what cms_schema/ says"
    assert api.types["article"]["fields"][2]["validations"][0]["size"]["max"] == 200
    assert report.count("unchanged") == 5

    api.writes.clear()
    report = push(schema)
    assert api.writes == [], "a second push writes nothing"
    assert {t.status for t in report.types} == {"unchanged"}
    assert report.lines()[-1] == "Content model: 6 unchanged"


def test_creating_a_type_sends_what_contentful_expects(
    schema: Path, mock: responses.RequestsMock
) -> None:
    for other in schema.glob("*.json"):
        if other.stem != "topic":
            other.unlink()
    created = fixture("management-content-type.json")
    created["sys"].update(version=1, publishedCounter=0)
    for key in ("publishedVersion", "publishedAt", "firstPublishedAt", "publishedBy"):
        del created["sys"][key]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = f"{BASE}{ENV_PATH}/content_types/topic"
    mock.add(responses.GET, f"{BASE}{ENV_PATH}", json=fixture("management-environment.json"))
    mock.add(responses.GET, path, status=404, json=fixture("management-error-not-found.json"))
    mock.add(
        responses.PUT,
        path,
        status=201,
        json=created,
        match=[
            matchers.header_matcher({**auth, "Content-Type": MEDIA_TYPE}),
            matchers.json_params_matcher(
                {
                    k: v
                    for k, v in json.loads((SCHEMA / "topic.json").read_text()).items()
                    if k != "sys"
                }
            ),
        ],
    )
    mock.add(
        responses.PUT,
        f"{path}/published",
        json=fixture("management-content-type.json"),
        match=[matchers.header_matcher({**auth, "X-Contentful-Version": "1"})],
    )
    mock.add(
        responses.GET, f"{path}/editor_interface", json=fixture("management-editor-interface.json")
    )
    wanted = json.loads((SCHEMA / "editor-interfaces" / "topic.json").read_text())["controls"]
    interface = fixture("management-editor-interface.json")
    mock.add(
        responses.PUT,
        f"{path}/editor_interface",
        json=interface,
        match=[
            matchers.header_matcher(
                {**auth, "X-Contentful-Version": "1", "Content-Type": MEDIA_TYPE}
            ),
            matchers.json_params_matcher({"controls": wanted, "sidebar": interface["sidebar"]}),
        ],
    )
    report = push(schema)
    assert [(t.id, t.status) for t in report.types] == [("topic", "created")]
    assert [c.request.method for c in mock.calls] == ["GET", "GET", "PUT", "PUT", "GET", "PUT"]
    assert "X-Contentful-Version" not in mock.calls[2].request.headers, "a new type has none"


def test_dry_run_writes_nothing_and_shows_the_difference(
    schema: Path, api: FakeManagementApi
) -> None:
    push(schema)
    api.writes.clear()

    def change(data: dict[str, Any]) -> None:
        data["fields"].append(
            {"id": "readingLevel", "name": "Reading level", "type": "Symbol", "required": True}
        )
        next(f for f in data["fields"] if f["id"] == "title")["required"] = False
        data["displayField"] = "slug"

    edit(schema / "article.json", change)
    edit(
        schema / "editor-interfaces" / "article.json",
        lambda d: d["controls"][0]["settings"].update(helpText="A new hint."),
    )
    report = push(schema, dry_run=True)
    assert api.writes == []
    article = next(t for t in report.types if t.id == "article")
    assert article.status == "updated"
    assert article.diff == (
        '~ displayField: "title" → "slug"',
        "~ field title: required true → false",
        "+ field readingLevel: Symbol, required",
        "~ help text of title",
    )
    lines = report.lines()
    assert "article: would update" in lines and "  + field readingLevel: Symbol, required" in lines
    assert "topic: would leave unchanged" in lines
    assert lines[-1] == "Dry run, nothing written: 1 to update, 5 unchanged"


def test_dry_run_against_an_empty_space_lists_every_field(
    schema: Path, api: FakeManagementApi
) -> None:
    report = push(schema, dry_run=True)
    assert api.writes == [] and api.types == {}
    topic = next(t for t in report.types if t.id == "topic")
    assert topic.status == "created"
    assert topic.diff == (
        "+ field name: Symbol, required",
        "+ field slug: Symbol, required",
        "+ field summary: Symbol",
        "+ field body: Text",
        "+ editor controls and help texts for 4 fields",
    )
    article = next(t for t in report.types if t.id == "article")
    assert "+ field topics: Array of Link to Entry" in article.diff


def test_removing_a_field_that_entries_use_is_refused(schema: Path, api: FakeManagementApi) -> None:
    edit(
        schema / "article.json",
        lambda d: d["fields"].append({"id": "teaser", "name": "Teaser", "type": "Text"}),
    )
    push(schema)
    edit(schema / "article.json", lambda d: d["fields"].pop())
    edit(schema / "topic.json", lambda d: d.update(name="Subject"))
    api.in_use[("article", "teaser")] = 3
    api.writes.clear()
    with pytest.raises(ConfigError) as raised:
        push(schema)
    message = str(raised.value)
    assert "article" in message and "'teaser'" in message and "3 entries" in message
    assert '"omitted": true' in message and '"deleted": true' in message
    assert api.writes == [], "nothing changes, not even the other types"
    assert api.types["topic"]["name"] == "Topic"


def test_removing_an_unused_field_omits_then_deletes_it(
    schema: Path, api: FakeManagementApi
) -> None:
    edit(
        schema / "article.json",
        lambda d: d["fields"].append({"id": "teaser", "name": "Teaser", "type": "Text"}),
    )
    push(schema)
    edit(schema / "article.json", lambda d: d["fields"].pop())
    api.writes.clear()
    report = push(schema)
    article = next(t for t in report.types if t.id == "article")
    assert article.diff == ("- field teaser: Text (no entry uses it)",)
    assert api.writes == [
        ("PUT", "/content_types/article", "2"),
        ("PUT", "/content_types/article/published", "3"),
        ("PUT", "/content_types/article", "4"),
        ("PUT", "/content_types/article/published", "5"),
    ]
    assert "teaser" not in [f["id"] for f in api.types["article"]["fields"]]
    api.writes.clear()
    push(schema)
    assert api.writes == []


def test_a_deleted_field_must_be_omitted_first(schema: Path, api: FakeManagementApi) -> None:
    push(schema)
    edit(schema / "topic.json", lambda d: d["fields"][3].update(deleted=True))
    with pytest.raises(ConfigError, match="not omitted in Contentful yet"):
        push(schema)
    edit(schema / "topic.json", lambda d: d["fields"][3].update(deleted=False, omitted=True))
    push(schema)
    edit(schema / "topic.json", lambda d: d["fields"][3].update(deleted=True))
    push(schema)
    assert [f["id"] for f in api.types["topic"]["fields"]] == ["name", "slug", "summary"]
    api.writes.clear()
    push(schema)
    assert api.writes == [], "a field deleted in Contentful stays deleted quietly"


def test_a_bad_token_names_the_variable_and_never_shows_the_token(
    schema: Path, mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mock.add(
        responses.GET,
        f"{BASE}{ENV_PATH}",
        status=401,
        json=fixture("management-error-access-token-invalid.json"),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as raised:
        push(schema)
    assert "CONTENTFUL_MANAGEMENT_TOKEN" in str(raised.value)
    assert "401 AccessTokenInvalid" in str(raised.value)
    assert raised.value.exit_code == 3
    assert TOKEN not in str(raised.value) and TOKEN not in caplog.text
    assert TOKEN not in repr(SETTINGS)


def test_an_unknown_space_names_the_variables(schema: Path, mock: responses.RequestsMock) -> None:
    mock.add(responses.GET, f"{BASE}{ENV_PATH}", status=404, json=fixture("error_404.json"))
    with pytest.raises(SourceError, match="CONTENTFUL_SPACE_ID and CONTENTFUL_ENVIRONMENT"):
        push(schema)


def test_network_failures_are_retried_then_reported(
    schema: Path, mock: responses.RequestsMock
) -> None:
    mock.add(responses.GET, f"{BASE}{ENV_PATH}", body=requests.ConnectionError("refused"))
    with pytest.raises(
        SourceError, match=r"did not answer GET .* after 5 attempts \(last: ConnectionError\)"
    ):
        push(schema)
    assert len(mock.calls) == 5


def test_rate_limits_and_server_errors_are_waited_out(
    schema: Path, mock: responses.RequestsMock
) -> None:
    for other in schema.glob("*.json"):
        if other.stem != "topic":
            other.unlink()
    (schema / "editor-interfaces" / "topic.json").unlink()
    env = f"{BASE}{ENV_PATH}"
    mock.add(responses.GET, env, status=429, json={}, headers={"X-Contentful-RateLimit-Reset": "7"})
    mock.add(responses.GET, env, status=503, json={})
    mock.add(responses.GET, env, json=fixture("management-environment.json"))
    mock.add(
        responses.GET, f"{env}/content_types/topic", json=fixture("management-content-type.json")
    )
    waits: list[float] = []
    report = push_schema(schema, SETTINGS, dry_run=False, sleep=waits.append)
    assert [t.status for t in report.types] == ["unchanged"]
    assert waits[0] == 7 and 0.5 <= waits[1] <= 1.5, "the reset header, then backoff"


def test_a_type_saved_but_not_active_is_activated(
    schema: Path, mock: responses.RequestsMock
) -> None:
    for other in schema.glob("*.json"):
        if other.stem != "topic":
            other.unlink()
    (schema / "editor-interfaces" / "topic.json").unlink()
    draft = fixture("management-content-type.json")
    draft["sys"]["version"] = 3
    path = f"{BASE}{ENV_PATH}/content_types/topic"
    mock.add(responses.GET, f"{BASE}{ENV_PATH}", json=fixture("management-environment.json"))
    mock.add(responses.GET, path, json=draft)
    mock.add(
        responses.PUT,
        f"{path}/published",
        json=fixture("management-content-type.json"),
        match=[matchers.header_matcher({"X-Contentful-Version": "3"})],
    )
    report = push(schema)
    assert report.types[0].diff == ("~ activate the content type (it has changes not yet active)",)


def test_settings_come_from_the_environment() -> None:
    settings = ContentfulSettings.from_env(
        {
            "CONTENTFUL_SPACE_ID": "abc",
            "CONTENTFUL_MANAGEMENT_TOKEN": "t",
            "CONTENTFUL_MANAGEMENT_HOST": "http://127.0.0.1:8123/",
        },
        management=True,
    )
    assert (settings.environment, settings.management_host) == ("master", "http://127.0.0.1:8123")
    eu = ContentfulSettings.from_env(
        {
            "CONTENTFUL_SPACE_ID": "abc",
            "CONTENTFUL_MANAGEMENT_TOKEN": "t",
            "CONTENTFUL_ENVIRONMENT": "staging",
            "CONTENTFUL_MANAGEMENT_HOST": "api.eu.contentful.com",
        },
        management=True,
    )
    assert (eu.environment, eu.management_host) == ("staging", "https://api.eu.contentful.com")
    with pytest.raises(ConfigError, match="^CONTENTFUL_MANAGEMENT_TOKEN is not set"):
        ContentfulSettings.from_env({"CONTENTFUL_SPACE_ID": "abc"}, management=True)
    with pytest.raises(
        ConfigError, match="CONTENTFUL_SPACE_ID and CONTENTFUL_MANAGEMENT_TOKEN are not set"
    ):
        ContentfulSettings.from_env({}, management=True)


def test_a_malformed_schema_file_is_a_configuration_error(schema: Path) -> None:
    (schema / "topic.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="topic.json: not a Contentful content type"):
        push(schema)
