"""The Contentful source: sync and its store, locales, links, preview paging and failures.

Unit tests answer requests with `responses`, from fixtures in the exact shapes Contentful's
Delivery and Preview APIs return; tests/contentful/test_http.py speaks real HTTP to
tests/contentful_server.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers
from support import REPO, read_all, validate

from headwater.cache import text_digest
from headwater.contentful import store as contentful_store
from headwater.contentful.client import MAX_ATTEMPTS
from headwater.contentful.settings import ContentfulSettings
from headwater.contentful.sync import PullReport, open_snapshot, pull
from headwater.errors import ConfigError, SourceError
from headwater.model import Snapshot, entry_label
from headwater.parallel import run_sharded
from headwater.schema import load_model

FIXTURES = REPO / "tests" / "fixtures" / "contentful"
SPACE = "q8nk2xw4r1ta"
TOKEN = "cda-secret-5e1b9f0c2d7a4e83"
PREVIEW_TOKEN = "cpa-secret-a41c07d9e2b6f358"
CDN = f"https://cdn.contentful.com/spaces/{SPACE}/environments/master"
PREVIEW = f"https://preview.contentful.com/spaces/{SPACE}/environments/master"
MODEL_TYPES = {"article", "author", "page", "siteSettings", "topic"}
ARTICLE_1 = "1QwErT5yUiOpAsDfGhJkLz"
ARTICLE_2 = "4ZxCvBnM2qWeRtYuIoPlKj"
ARTICLE_3 = "8MnBvCxZ2aSdFgHjKlPoIu"
AUTHOR = "3hKs9QwE2rTyUu1IoPaSdF"
PICTURE = "0AsDfGhJkLqWeRtYuIoPzX"
APP = f"https://app.contentful.com/spaces/{SPACE}/environments/master"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["sync_token"][0]


INITIAL = [fixture(f"sync_initial_{n}.json") for n in (1, 2, 3)]
FIRST_TOKEN = token_of(INITIAL[2]["nextSyncUrl"])


class Sleeps(list[float]):
    """Stands in for time.sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


@pytest.fixture
def settings() -> ContentfulSettings:
    return ContentfulSettings.from_env(
        {
            "CONTENTFUL_SPACE_ID": SPACE,
            "CONTENTFUL_DELIVERY_TOKEN": TOKEN,
            "CONTENTFUL_PREVIEW_TOKEN": PREVIEW_TOKEN,
        }
    )


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def load(settings: ContentfulSettings, cache: Path, **options: Any) -> Snapshot:
    options.setdefault("sleep", no_sleep)
    options.setdefault("model_types", MODEL_TYPES)
    options.setdefault("model_digest", "model-1")
    options.setdefault("env", {})
    return open_snapshot(settings, cache_dir=cache, **options)


def add_metadata(api: responses.RequestsMock, base: str = CDN, **changes: Any) -> None:
    api.get(base + "/locales", json=changes.get("locales", fixture("locales.json")))
    api.get(base + "/content_types", json=fixture("content_types.json"))


def add_sync(api: responses.RequestsMock, pages: list[dict[str, Any]], first: str | None) -> None:
    """The sync pages, each matched by the token the one before it handed out."""
    query = {"initial": "true"} if first is None else {"sync_token": first}
    for page in pages:
        api.get(CDN + "/sync", json=page, match=[matchers.query_param_matcher(query)])
        if "nextPageUrl" in page:
            query = {"sync_token": token_of(page["nextPageUrl"])}


def initial_sync(api: responses.RequestsMock, settings: ContentfulSettings, cache: Path) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    load(settings, cache)
    api.reset()


def sync_calls(api: responses.RequestsMock) -> list[str]:
    return [c.request.url or "" for c in api.calls if "/sync" in (c.request.url or "")]


def store_file(cache: Path, kind: str = "delivery") -> Path:
    return cache / "contentful" / SPACE / "master" / f"{kind}.sqlite3"


def stored(cache: Path, kind: str = "delivery") -> dict[str, Any]:
    """What a store holds: its sync token and its entries and assets by id."""
    db = sqlite3.connect(store_file(cache, kind))
    try:
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        items = db.execute("SELECT kind, id, raw FROM items").fetchall()
    finally:
        db.close()
    return {
        "syncToken": meta.get("sync_token"),
        "entries": {i: pickle.loads(r) for k, i, r in items if k == "Entry"},
        "assets": {i: pickle.loads(r) for k, i, r in items if k == "Asset"},
    }


def by_id(snapshot: Snapshot) -> dict[str, Any]:
    return read_all(snapshot)


# Settings


def test_settings_default_to_the_master_environment_and_contentful_hosts() -> None:
    settings = ContentfulSettings.from_env(
        {"CONTENTFUL_SPACE_ID": SPACE, "CONTENTFUL_DELIVERY_TOKEN": TOKEN}
    )
    assert (settings.environment, settings.host, settings.preview_host) == (
        "master",
        "https://cdn.contentful.com",
        "https://preview.contentful.com",
    )


def test_hosts_are_host_names_or_base_urls() -> None:
    settings = ContentfulSettings.from_env(
        {
            "CONTENTFUL_SPACE_ID": SPACE,
            "CONTENTFUL_DELIVERY_TOKEN": TOKEN,
            "CONTENTFUL_HOST": "cdn.eu.contentful.com",
            "CONTENTFUL_PREVIEW_HOST": "http://127.0.0.1:8123/",
        }
    )
    assert settings.host == "https://cdn.eu.contentful.com"
    assert settings.preview_host == "http://127.0.0.1:8123"
    with pytest.raises(ConfigError, match="CONTENTFUL_HOST"):
        ContentfulSettings.from_env(
            {
                "CONTENTFUL_SPACE_ID": SPACE,
                "CONTENTFUL_DELIVERY_TOKEN": TOKEN,
                "CONTENTFUL_HOST": "ftp://x",
            }
        )


@pytest.mark.parametrize(
    ("env", "preview", "variable"),
    [
        ({"CONTENTFUL_DELIVERY_TOKEN": TOKEN}, False, "CONTENTFUL_SPACE_ID"),
        ({"CONTENTFUL_SPACE_ID": SPACE}, False, "CONTENTFUL_DELIVERY_TOKEN"),
        (
            {"CONTENTFUL_SPACE_ID": SPACE, "CONTENTFUL_DELIVERY_TOKEN": TOKEN},
            True,
            "CONTENTFUL_PREVIEW_TOKEN",
        ),
    ],
)
def test_a_missing_setting_is_a_config_error_naming_the_variable(
    env: dict[str, str], preview: bool, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        ContentfulSettings.from_env(env, preview=preview)
    assert caught.value.exit_code == 2


def test_settings_never_show_their_tokens(settings: ContentfulSettings) -> None:
    assert TOKEN not in repr(settings) and PREVIEW_TOKEN not in repr(settings)


# Delivery through the Sync API


def test_initial_sync_follows_every_page_and_keeps_the_sync_token(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    snapshot = load(settings, tmp_path)

    assert len(api.calls) == 5  # /locales, /content_types and three sync pages
    for call in api.calls:  # connect, then read: never longer than the request's deadline
        connect, read = call.request.req_kwargs["timeout"]  # type: ignore[attr-defined]
        assert 0 < connect <= 5 and 0 < read <= settings.deadline
    assert len(sync_calls(api)) == 3
    assert snapshot.description == f"Contentful space {SPACE}/master"
    store = stored(tmp_path)
    assert store["syncToken"] == FIRST_TOKEN
    assert len(store["entries"]) == 8 and len(store["assets"]) == 1

    entries = by_id(snapshot)
    article = entries[ARTICLE_1]
    assert article.content_type == "article"
    assert article.fields["title"] == "The First Article"
    assert article.fields["author"] == {"sys": {"type": "Link", "linkType": "Entry", "id": AUTHOR}}
    assert article.fields["body"]["nodeType"] == "document"
    assert article.origin == f"article “The First Article” ({APP}/entries/{ARTICLE_1})"
    assert article.digest == f"{ARTICLE_1}:4:2026-02-01T10:30:44.219Z"


def test_assets_carry_their_file_details(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    picture = load(settings, tmp_path).assets[PICTURE]
    url = f"https://images.ctfassets.net/{SPACE}/{PICTURE}/5d41402abc4b2a76b9719d911017c592/pic.jpg"
    assert (picture.title, picture.alt, picture.mime) == (
        "A blue square",
        "A blue square on a white background",
        "image/jpeg",
    )
    assert (picture.source, picture.url) == (url, url)
    assert (picture.width, picture.height, picture.size) == (1200, 800, 84512)


def test_entries_of_types_outside_the_model_are_dropped_with_one_notice(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    with caplog.at_level(logging.INFO, logger="headwater"):
        snapshot = load(settings, tmp_path)
    assert "landingPage" not in {h.content_type for h in snapshot.heads.values()}
    notices = [r.getMessage() for r in caplog.records if "landingPage" in r.getMessage()]
    assert notices == [
        "ignoring 1 Contentful entry of content types not in cms_schema/: landingPage (1)"
    ]


def test_the_fixture_space_passes_the_content_model(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    content, problems = validate(load(settings, tmp_path), load_model(REPO / "cms_schema"))
    assert problems == []
    assert content is not None
    assert content.settings.homePage.slug == "home"
    assert content.of_type("article")[0].heroImage.id == PICTURE


def test_a_body_is_read_back_from_the_store_by_entry_id_and_digest(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    snapshot = load(settings, tmp_path)
    body = by_id(snapshot)[ARTICLE_1].fields["body"]
    digest = text_digest(body)
    texts = snapshot.texts
    assert texts is not None
    assert texts.text(ARTICLE_1, "body", digest) == body
    # A forked render worker opens the store afresh (an SQLite handle must not cross a fork).
    assert (
        run_sharded(
            lambda ids: [texts.text(i, "body", digest) for i in ids], [ARTICLE_1] * 4, workers=2
        )
        == [body] * 4
    )
    # Another value than the one checked, or an entry the store no longer holds, is not there.
    with pytest.raises(KeyError):
        texts.text(ARTICLE_1, "body", text_digest({**body, "content": []}))
    with pytest.raises(KeyError):
        texts.text("no-such-entry", "body", digest)


def test_a_delta_applies_an_update_a_new_entry_and_a_deletion(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    initial_sync(api, settings, tmp_path)
    add_sync(api, [fixture("sync_delta.json")], FIRST_TOKEN)
    entries = by_id(load(settings, tmp_path))

    assert sync_calls(api) == [f"{CDN}/sync?sync_token={FIRST_TOKEN}"]
    assert entries[ARTICLE_1].fields["title"] == "The First Article, Revised"
    assert entries[ARTICLE_3].fields["title"] == "A Third Article"
    assert ARTICLE_2 not in entries
    assert stored(tmp_path)["syncToken"] == token_of(fixture("sync_delta.json")["nextSyncUrl"])


def test_a_one_entry_delta_makes_exactly_one_sync_request(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    initial_sync(api, settings, tmp_path)
    add_sync(api, [fixture("sync_delta_one_entry.json")], FIRST_TOKEN)
    entries = by_id(load(settings, tmp_path))
    assert len(sync_calls(api)) == 1
    assert len(api.calls) == 1  # the model was read an instant ago: only the sync page
    topic = next(e for e in entries.values() if e.content_type == "topic")
    assert topic.fields["summary"] == "Articles about testing, and how to read them."


def test_an_empty_delta_keeps_the_store_and_its_token(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    initial_sync(api, settings, tmp_path)
    before = stored(tmp_path)
    empty = {"sys": {"type": "Array"}, "items": [], "nextSyncUrl": f"{CDN}/sync?sync_token=e1"}
    for _ in range(2):  # the second build still starts from the first token
        add_sync(api, [empty], FIRST_TOKEN)
        assert len(load(settings, tmp_path).heads) == 7
        api.reset()
    assert stored(tmp_path) == before


def test_pull_reports_what_changed_by_title(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    add_sync(api, INITIAL, None)
    options: dict[str, Any] = {"model_types": MODEL_TYPES, "model_digest": "m", "sleep": no_sleep}
    first = pull(settings, cache_dir=tmp_path, **options)
    assert first.initial and len(first.created) == 9 and not first.updated and not first.deleted
    api.reset()
    add_sync(api, [fixture("sync_delta.json")], FIRST_TOKEN)
    second = pull(settings, cache_dir=tmp_path, **options)
    assert second == PullReport(
        description=f"Contentful space {SPACE}/master",
        initial=False,
        created=["article “A Third Article”"],
        updated=["article “The First Article, Revised”"],
        deleted=["article “A Second Article”"],
        requests=1,
    )


# Locales


def locales_with_swiss_german() -> dict[str, Any]:
    locales = fixture("locales.json")
    locales["items"].append(
        {
            "code": "de-CH",
            "name": "German (Switzerland)",
            "default": False,
            "fallbackCode": "de-DE",
            "sys": {"id": "7pQwErTyUiOpAsDfGhJkLz", "type": "Locale", "version": 1},
        }
    )
    locales["items"].append(
        {
            "code": "fr-FR",
            "name": "French (France)",
            "default": False,
            "fallbackCode": None,
            "sys": {"id": "2cVbNmQwErTyUiOpAsDfGh", "type": "Locale", "version": 1},
        }
    )
    locales["total"] = 4
    return locales


@pytest.mark.parametrize(
    ("locale", "title"),
    [
        (None, "The First Article"),
        ("de-DE", "Der erste Artikel"),
        ("de-CH", "Der erste Artikel"),  # two hops: de-CH → de-DE
    ],
)
def test_fields_follow_the_locale_fallback_chain_only_when_absent(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    locale: str | None,
    title: str,
) -> None:
    add_metadata(api, locales=locales_with_swiss_german())
    add_sync(api, INITIAL, None)
    settings = dataclasses.replace(settings, locale=locale)
    article = by_id(load(settings, tmp_path))[ARTICLE_1]
    assert article.fields["title"] == title
    assert article.fields["summary"] == "A short summary of the first article."  # en-US only
    assert article.fields["slug"] == "first-article"  # not localized: the default locale's value


def test_a_locale_without_fallback_leaves_untranslated_fields_empty(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api, locales=locales_with_swiss_german())
    add_sync(api, INITIAL, None)
    settings = dataclasses.replace(settings, locale="fr-FR")
    article = by_id(load(settings, tmp_path))[ARTICLE_1]
    assert "title" not in article.fields and "summary" not in article.fields
    assert article.fields["slug"] == "first-article"  # not localized
    assert article.origin.startswith(f"article “{ARTICLE_1}” (")


def test_an_unknown_locale_is_a_config_error(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)  # checked against /locales before anything is synced or written
    settings = dataclasses.replace(settings, locale="it-IT")
    with pytest.raises(ConfigError, match="CONTENTFUL_LOCALE 'it-IT'.*de-DE, en-US"):
        load(settings, tmp_path)
    assert not (tmp_path / "contentful").exists()


# Links


def test_a_link_to_a_missing_entry_is_a_problem_naming_both_entries(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    pages = copy.deepcopy(INITIAL)
    article = next(i for i in pages[2]["items"] if i["sys"]["id"] == ARTICLE_1)
    article["fields"]["author"]["en-US"]["sys"]["id"] = "6mIsSiNgAuThOr00000000"
    add_metadata(api)
    add_sync(api, pages, None)
    content, problems = validate(load(settings, tmp_path), load_model(REPO / "cms_schema"))
    assert content is None
    [problem] = problems
    assert (problem.field, problem.rule) == ("author", "link")
    text = str(problem)
    assert f"article “The First Article” ({APP}/entries/{ARTICLE_1})" in text
    assert "6mIsSiNgAuThOr00000000" in text


def test_unpublishing_a_linked_entry_is_a_problem_not_a_crash(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    initial_sync(api, settings, tmp_path)
    unpublished = {
        "sys": {
            **{k: v for k, v in INITIAL[1]["items"][1]["sys"].items() if k != "contentType"},
            "type": "DeletedEntry",
            "deletedAt": "2026-03-03T09:00:00.000Z",
        }
    }
    delta = {
        "sys": {"type": "Array"},
        "items": [unpublished],
        "nextSyncUrl": f"{CDN}/sync?sync_token=x1",
    }
    add_sync(api, [delta], FIRST_TOKEN)
    content, problems = validate(load(settings, tmp_path), load_model(REPO / "cms_schema"))
    assert content is None
    linking = {(p.origin.split(" (")[0], p.field) for p in problems if AUTHOR in str(p)}
    assert linking == {
        ("article “The First Article”", "author"),
        ("article “The First Article”", "medicalReviewer"),
        ("article “A Second Article”", "author"),
    }


# Failures


def test_a_rate_limited_request_waits_for_the_reset_header(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    api.get(
        CDN + "/locales",
        status=429,
        json=fixture("error_429.json"),
        headers={"X-Contentful-RateLimit-Reset": "7"},
    )
    add_metadata(api)
    add_sync(api, INITIAL, None)
    sleeps = Sleeps()
    assert len(load(settings, tmp_path, sleep=sleeps).heads) == 7
    assert sleeps == [7.0]


def test_a_server_error_is_retried_after_a_short_backoff(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    add_metadata(api)
    api.get(CDN + "/sync", status=500, json=fixture("error_500.json"))
    add_sync(api, INITIAL, None)
    sleeps = Sleeps()
    assert len(load(settings, tmp_path, sleep=sleeps).heads) == 7
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "json": {"sys": {"type": "Error", "id": "ServiceUnavailable"}}},
        {"body": requests.ConnectionError("refused")},
    ],
    ids=["503", "connection-error"],
)
def test_exhausted_retries_name_the_request_and_leave_the_store_alone(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    failure: dict[str, Any],
) -> None:
    initial_sync(api, settings, tmp_path)
    before = stored(tmp_path)
    api.get(CDN + "/sync", **failure)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as caught:
        load(settings, tmp_path, sleep=sleeps)
    message = str(caught.value)
    assert f"GET /spaces/{SPACE}/environments/master/sync" in message
    assert f"after {MAX_ATTEMPTS} attempts" in message and TOKEN not in message
    assert caught.value.exit_code == 3
    assert len(sleeps) == MAX_ATTEMPTS - 1 and sleeps == sorted(sleeps)
    assert stored(tmp_path) == before


@pytest.mark.parametrize(
    ("preview", "variable"),
    [(False, "CONTENTFUL_DELIVERY_TOKEN"), (True, "CONTENTFUL_PREVIEW_TOKEN")],
)
def test_a_bad_token_names_its_variable(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    preview: bool,
    variable: str,
) -> None:
    api.get((PREVIEW if preview else CDN) + "/locales", status=401, json=fixture("error_401.json"))
    with pytest.raises(SourceError, match=variable) as caught:
        load(settings, tmp_path, preview=preview)
    assert TOKEN not in str(caught.value) and PREVIEW_TOKEN not in str(caught.value)
    assert not (tmp_path / "contentful").exists()


def test_an_unknown_space_names_the_space_and_environment_variables(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    api.get(CDN + "/locales", status=404, json=fixture("error_404.json"))
    with pytest.raises(SourceError, match="CONTENTFUL_SPACE_ID and CONTENTFUL_ENVIRONMENT"):
        load(settings, tmp_path)


# The store


class Killed(Exception):
    """The build process dying between two pages."""


def test_a_sync_killed_mid_way_leaves_the_store_as_it_was(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    # Killed during the initial sync: nothing is stored at all.
    add_metadata(api)
    api.get(
        CDN + "/sync", json=INITIAL[0], match=[matchers.query_param_matcher({"initial": "true"})]
    )
    api.get(CDN + "/sync", body=Killed())
    with pytest.raises(Killed):
        load(settings, tmp_path)
    assert not store_file(tmp_path).exists()
    api.reset()

    # Killed on page 2 of a delta: the old token and entries stay.
    initial_sync(api, settings, tmp_path)
    before = stored(tmp_path)
    delta = fixture("sync_delta.json")
    page_1 = {**delta, "items": delta["items"][:1], "nextPageUrl": f"{CDN}/sync?sync_token=d2"}
    del page_1["nextSyncUrl"]
    page_2 = {**delta, "items": delta["items"][1:]}
    api.get(
        CDN + "/sync",
        json=page_1,
        match=[matchers.query_param_matcher({"sync_token": FIRST_TOKEN})],
    )
    api.get(CDN + "/sync", body=Killed())
    with pytest.raises(Killed):
        load(settings, tmp_path)
    assert stored(tmp_path) == before
    assert not list(store_file(tmp_path).parent.glob(".*.new"))
    api.reset()

    # The next build replays the delta from the old token and is correct.
    add_sync(api, [page_1, page_2], FIRST_TOKEN)
    entries = by_id(load(settings, tmp_path))
    assert entries[ARTICLE_1].fields["title"] == "The First Article, Revised"
    assert ARTICLE_3 in entries and ARTICLE_2 not in entries


def test_a_store_write_that_dies_part_way_keeps_the_previous_store(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    initial_sync(api, settings, tmp_path)
    before = stored(tmp_path)
    written: list[int] = []
    real_delete = contentful_store.Writer.delete

    def die(self: contentful_store.Writer, kind: str, ids: Any) -> None:
        # The delta's updates are written; the deletion after them never is.
        written.append(1)
        real_delete(self, kind, ids)
        raise Killed

    add_sync(api, [fixture("sync_delta.json")], FIRST_TOKEN)
    monkeypatch.setattr(contentful_store.Writer, "delete", die)
    with pytest.raises(Killed):
        load(settings, tmp_path)
    assert written and stored(tmp_path) == before


@pytest.mark.parametrize(
    "damage",
    [b"\x00\x01\x02 not a database" * 100, b'{"format": 1, "key": {"space": "q8nk2'],
    ids=["binary", "json"],
)
def test_a_damaged_store_is_rebuilt_by_a_full_sync_with_a_message(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: bytes,
) -> None:
    store_file(tmp_path).parent.mkdir(parents=True)
    store_file(tmp_path).write_bytes(damage)
    add_metadata(api)
    add_sync(api, INITIAL, None)
    with caplog.at_level(logging.WARNING, logger="headwater"):
        snapshot = load(settings, tmp_path)
    assert len(snapshot.heads) == 7
    assert any(
        "is damaged" in r.getMessage() and "full sync" in r.getMessage() for r in caplog.records
    )
    assert stored(tmp_path)["syncToken"] == FIRST_TOKEN


def test_a_store_of_an_earlier_version_is_replaced_never_misread(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What headwater wrote before its store moved to SQLite: one JSON file, with a token that
    # must not be sent (a delta from it onto an empty store would lose every other entry).
    old = store_file(tmp_path).with_suffix(".json")
    old.parent.mkdir(parents=True)
    old.write_text(
        json.dumps(
            {
                "format": 1,
                "key": {"space": SPACE, "environment": "master", "api": "delivery"},
                "syncToken": "a-token-from-the-old-store",
                "locales": [],
                "contentTypes": [],
                "entries": {},
                "assets": {},
            }
        )
    )
    add_metadata(api)
    add_sync(api, INITIAL, None)  # only an initial sync is answered
    with caplog.at_level(logging.INFO, logger="headwater"):
        snapshot = load(settings, tmp_path)
    assert len(snapshot.heads) == 7
    assert not old.exists()
    assert stored(tmp_path)["syncToken"] == FIRST_TOKEN
    assert "a-token-from-the-old-store" not in str([c.request.url for c in api.calls])
    assert any("earlier version" in r.getMessage() for r in caplog.records)


def test_a_store_of_the_json_row_format_is_synced_afresh_never_misread(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
) -> None:
    initial_sync(api, settings, tmp_path)
    # What the SQLite store of format 2 held: each item as JSON text, and its sync token.
    db = sqlite3.connect(store_file(tmp_path))
    with db:
        db.execute("UPDATE meta SET value = '2' WHERE name = 'format'")
        db.execute("UPDATE meta SET value = 'a-token-of-format-2' WHERE name = 'sync_token'")
        db.execute("UPDATE items SET raw = '{\"sys\": {}}'")
    db.close()
    add_metadata(api)
    add_sync(api, INITIAL, None)  # only an initial sync is answered
    snapshot = load(settings, tmp_path)
    assert len(snapshot.heads) == 7
    assert stored(tmp_path)["syncToken"] == FIRST_TOKEN
    assert "a-token-of-format-2" not in str([c.request.url for c in api.calls])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"host": "https://cdn.eu.contentful.com"}, "host"),
        ({"model": "changed"}, "model"),
    ],
)
def test_another_host_or_content_model_forces_an_initial_sync(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    reason: str,
) -> None:
    initial_sync(api, settings, tmp_path)
    options: dict[str, Any] = {}
    base = CDN
    if "host" in change:
        settings = dataclasses.replace(settings, host=change["host"])
        base = f"{change['host']}/spaces/{SPACE}/environments/master"
    else:
        options["model_digest"] = "model-2"
    add_metadata(api, base)
    for page in INITIAL:
        api.get(base + "/sync", json=page)
    with caplog.at_level(logging.INFO, logger="headwater"):
        load(settings, tmp_path, **options)
    assert "initial=true" in (api.calls[2].request.url or "")
    assert any(f"different {reason}" in r.getMessage() for r in caplog.records)


def test_no_token_reaches_a_log_line_an_error_or_the_store(
    api: responses.RequestsMock,
    settings: ContentfulSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    add_metadata(api)
    api.get(CDN + "/sync", status=502, body="Bad gateway")
    add_sync(api, INITIAL, None)
    load(settings, tmp_path, sleep=Sleeps())
    api.reset()
    api.get(CDN + "/sync", status=401, json=fixture("error_401.json"))
    with pytest.raises(SourceError) as caught:
        load(settings, tmp_path)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    said = [r.getMessage() for r in caplog.records] + [str(caught.value)]
    for secret in (TOKEN, PREVIEW_TOKEN):
        assert secret.encode() not in written
        assert not [line for line in said if secret in line]
    assert "Bearer" in str(api.calls[0].request.headers["Authorization"])


# Preview


def test_preview_pages_entries_and_halves_the_page_when_it_is_too_big(
    api: responses.RequestsMock, settings: ContentfulSettings, tmp_path: Path
) -> None:
    every = fixture("preview_entries.json")

    def entries_page(request: Any) -> tuple[int, dict[str, str], str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        assert (query["include"], query["locale"]) == ("10", "*")
        limit, skip = int(query["limit"]), int(query["skip"])
        if limit > 3:  # the rich-text bodies make more than three entries "too big"
            return 400, {}, json.dumps(fixture("error_too_big.json"))
        page = {**every, "items": every["items"][skip : skip + limit], "skip": skip, "limit": limit}
        return 200, {}, json.dumps(page)

    add_metadata(api, PREVIEW)
    api.add_callback(responses.GET, PREVIEW + "/entries", callback=entries_page)
    api.get(PREVIEW + "/assets", json=fixture("preview_assets.json"))
    snapshot = load(settings, tmp_path, preview=True)

    limits = [
        int(parse_qs(urlsplit(c.request.url or "").query)["limit"][0])
        for c in api.calls
        if "/entries" in (c.request.url or "")
    ]
    assert limits == [1000, 500, 250, 125, 62, 31, 15, 7, 3, 3, 3]
    assert set(snapshot.heads) == {i["sys"]["id"] for i in every["items"]}
    assert "A Draft Article" in {entry_label(e.fields, e.id) for e in read_all(snapshot).values()}
    assert snapshot.description == f"Contentful space {SPACE}/master (preview)"
    assert store_file(tmp_path, "preview").is_file()
    assert not store_file(tmp_path).exists()  # the delivery store is not touched
