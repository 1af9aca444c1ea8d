"""The Contentful source over real HTTP, against the local Delivery/Preview API server
(tests/contentful_server.py): a whole space, deltas, a slow server, a forgotten sync token,
and the preview's fetches by id."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from contentful_server import DELIVERY_TOKEN, PREVIEW_TOKEN, ContentfulServer, FakeSpace
from support import REPO, make_project, read_all, snapshot_tree, stores_of, validate

from headwater.contentful.settings import ContentfulSettings
from headwater.contentful.sync import fetch_by_id, open_snapshot
from headwater.errors import SourceError
from headwater.model import Snapshot
from headwater.schema import load_model

FIXTURES = REPO / "tests" / "fixtures" / "contentful"
SPACE = "q8nk2xw4r1ta"
ARTICLE_1 = "1QwErT5yUiOpAsDfGhJkLz"
ARTICLE_2 = "4ZxCvBnM2qWeRtYuIoPlKj"
MODEL_TYPES = {"article", "author", "page", "siteSettings", "topic"}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def load(settings: ContentfulSettings, cache: Path, **options: Any) -> Snapshot:
    options.setdefault("model_types", MODEL_TYPES)
    options.setdefault("model_digest", "model-1")
    options.setdefault("env", {})
    return open_snapshot(settings, cache_dir=cache, **options)


def settings_for(server: ContentfulServer, **variables: str) -> ContentfulSettings:
    return ContentfulSettings.from_env(
        {
            "CONTENTFUL_SPACE_ID": SPACE,
            "CONTENTFUL_DELIVERY_TOKEN": DELIVERY_TOKEN,
            "CONTENTFUL_PREVIEW_TOKEN": PREVIEW_TOKEN,
            "CONTENTFUL_HOST": server.url,
            "CONTENTFUL_PREVIEW_HOST": server.url,
            **variables,
        }
    )


def test_a_whole_space_loads_over_http_and_then_syncs_one_delta(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    space = FakeSpace.from_fixtures(FIXTURES)
    with ContentfulServer(space) as server:
        settings = settings_for(server)
        first = load(settings, tmp_path)
        assert len(server.paths("/sync")) == 3  # nine items, three per page
        content, problems = validate(first, load_model(REPO / "cms_schema"))
        assert problems == [] and content is not None

        revised = fixture("sync_delta.json")["items"][0]
        space.publish(revised)
        space.delete("Entry", ARTICLE_2)
        server.requests.clear()
        entries = read_all(load(settings, tmp_path))
        assert server.requests == [r for r in server.requests if "/sync" in r]  # only the delta
        assert len(server.paths("/sync")) == 1
        assert entries[ARTICLE_1].fields["title"] == "The First Article, Revised"
        assert ARTICLE_2 not in entries

        wrong = dataclasses.replace(settings, delivery_token="not-the-token")
        with pytest.raises(SourceError, match="CONTENTFUL_DELIVERY_TOKEN"):
            load(wrong, tmp_path)
    assert not [r for r in caplog.records if DELIVERY_TOKEN in r.getMessage()]


def build_env(server: ContentfulServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
    env.update(
        CONTENTFUL_SPACE_ID=server.space.space_id,
        CONTENTFUL_ENVIRONMENT=server.space.environment,
        CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
        CONTENTFUL_HOST=server.url,
        **extra,
    )
    return env


def run_build(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "headwater", "--project", str(project), "build"]
    command += ["--base-url", "https://example.test", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_an_answer_slower_than_the_deadline_fails_at_the_deadline_and_changes_nothing(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "site")
    space = FakeSpace.from_fixtures(FIXTURES)
    with ContentfulServer(space, page_size=100) as server:
        assert run_build(project, build_env(server)).returncode == 0
        site = snapshot_tree(project / "public")
        store = stores_of(project / ".cache" / "headwater" / "contentful")
        space.publish({**space.items[f"Entry:{ARTICLE_2}"]})
        server.trickle = 0.3  # a byte every 0.3 s: the answer would take minutes
        result = run_build(project, build_env(server, CONTENTFUL_TIMEOUT="1.5"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "within 2 s" in result.stderr and "/sync" in result.stderr
    assert DELIVERY_TOKEN not in result.stderr
    assert snapshot_tree(project / "public") == site
    assert stores_of(project / ".cache" / "headwater" / "contentful") == store


def test_a_rejected_sync_token_is_followed_by_one_initial_sync_and_a_correct_site(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "site")
    space = FakeSpace.from_fixtures(FIXTURES)
    with ContentfulServer(space) as server:
        assert run_build(project, build_env(server)).returncode == 0
        revised = fixture("sync_delta.json")["items"][0]
        space.publish(revised)
        server.reject_tokens = True
        server.requests.clear()
        result = run_build(project, build_env(server))
        assert result.returncode == 0, result.stderr
        assert "rejected the stored sync token" in result.stderr
        assert "has no space" not in result.stderr
        initial = [r for r in server.paths("/sync") if "initial=true" in r]
        assert len(initial) == 1
        full = run_build(project, build_env(server), "--full", "--out", str(project / "full"))
        assert full.returncode == 0, full.stderr
    article = project / "public" / "blog" / "first-article" / "index.html"
    assert "The First Article, Revised" in article.read_text()
    assert snapshot_tree(project / "public").keys() == snapshot_tree(project / "full").keys()
    for name, (data, _) in snapshot_tree(project / "full").items():
        assert snapshot_tree(project / "public")[name][0] == data, name


def test_the_preview_fetches_saved_entries_by_id_in_a_handful_of_requests(
    tmp_path: Path,
) -> None:
    space = FakeSpace.from_fixtures(FIXTURES)
    with ContentfulServer(space) as server:
        settings = settings_for(server)
        options: dict[str, Any] = {"model_types": MODEL_TYPES, "model_digest": "model-1"}
        load(settings, tmp_path, preview=True)
        draft = json.loads(json.dumps(space.items[f"Entry:{ARTICLE_1}"]))
        draft["sys"]["revision"] += 1
        draft["fields"]["title"] = {"en-US": "A Saved Draft Title"}
        space.publish(draft)
        space.delete("Entry", ARTICLE_2)
        server.requests.clear()
        made = fetch_by_id(settings, cache_dir=tmp_path, entries=[ARTICLE_1, ARTICLE_2], **options)
        assert made == len(server.requests) <= 3
        assert all("sys.id" in r for r in server.requests)  # never a listing of the space
        entries = read_all(load(settings, tmp_path, preview=True, refresh=False))
        assert entries[ARTICLE_1].fields["title"] == "A Saved Draft Title"
        assert ARTICLE_2 not in entries


def test_a_sync_reports_its_progress_page_by_page(tmp_path: Path) -> None:
    space = FakeSpace.from_fixtures(FIXTURES)
    told: list[tuple[str, int, int]] = []
    with ContentfulServer(space) as server:
        load(settings_for(server), tmp_path, progress=lambda *args: told.append(args))
        assert told == [("initial sync", 3, 0), ("initial sync", 6, 0), ("initial sync", 9, 0)]
        told.clear()
        space.publish(fixture("sync_delta.json")["items"][0])
        load(settings_for(server), tmp_path, progress=lambda *args: told.append(args))
    assert told == [("delta sync", 1, 0)]
