"""End to end: `headwater build` in a subprocess against a local Delivery API server."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from contentful_server import DELIVERY_TOKEN, ContentfulServer, FakeSpace
from support import REPO, make_project

FIXTURES = REPO / "tests" / "fixtures" / "contentful"


def run_build(project: Path, server: ContentfulServer) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
    env.update(
        CONTENTFUL_SPACE_ID=server.space.space_id,
        CONTENTFUL_ENVIRONMENT=server.space.environment,
        CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
        CONTENTFUL_HOST=server.url,
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "headwater",
            "--project",
            str(project),
            "build",
            "--base-url",
            "https://example.test",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_build_from_a_delivery_api_shows_the_served_entries(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    with ContentfulServer(FakeSpace.from_fixtures(FIXTURES)) as server:
        result = run_build(project, server)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "from Contentful space" in result.stdout
        assert DELIVERY_TOKEN not in result.stdout + result.stderr
        public = project / "public"
        article = (public / "blog" / "first-article" / "index.html").read_text()
        assert "The First Article" in article
        assert (public / "blog" / "second-article" / "index.html").is_file() or any(
            "A Second Article" in p.read_text() for p in (public / "blog").rglob("index.html")
        )
        assert "<h2 id=" in article  # the RichText body rendered, headings anchored
        # The hero image through the Images API: modern formats, a few widths, real size.
        hero = article.split("<picture>", 1)[1].split("</picture>", 1)[0]
        base = "https://images.ctfassets.net/q8nk2xw4r1ta/0AsDfGhJkLqWeRtYuIoPzX/"
        assert f'type="image/avif" srcset="{base}' in hero and "fm=avif" in hero
        assert 'type="image/webp"' in hero and "w=480&amp;fm=webp 480w" in hero
        assert 'width="1200" height="800"' in hero and "w=1200 1200w" in hero
        # Shared, it is the same image cropped to a card by the Images API, not a drawn card.
        crop = f"{base}5d41402abc4b2a76b9719d911017c592/pic.jpg"
        crop += "?fm=jpg&amp;w=1200&amp;h=630&amp;fit=fill"
        assert f'<meta property="og:image" content="{crop}">' in article
        syncs = len(server.paths("/sync"))

        # A second build asks only for the delta: one sync request.
        again = run_build(project, server)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(server.paths("/sync")) == syncs + 1
    for path in (project / ".cache").rglob("*"):
        if path.is_file():
            assert DELIVERY_TOKEN.encode() not in path.read_bytes(), path
    for path in public.rglob("*"):
        if path.is_file():
            assert DELIVERY_TOKEN.encode() not in path.read_bytes(), path


def test_pull_reports_changes_and_a_deleted_article_leaves_the_site(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    with ContentfulServer(FakeSpace.from_fixtures(FIXTURES)) as server:
        assert run_build(project, server).returncode == 0
        public = project / "public"
        assert (public / "blog" / "second-article" / "index.html").is_file()
        assert "/blog/second-article/" in (public / "feed.xml").read_text()

        server.space.delete("Entry", "4ZxCvBnM2qWeRtYuIoPlKj")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
        env.update(
            CONTENTFUL_SPACE_ID=server.space.space_id,
            CONTENTFUL_ENVIRONMENT=server.space.environment,
            CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
            CONTENTFUL_HOST=server.url,
        )
        pulled = subprocess.run(
            [sys.executable, "-m", "headwater", "--project", str(project), "pull"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert pulled.returncode == 0, pulled.stderr
        assert "1 deleted" in pulled.stdout and "A Second Article" in pulled.stdout

        result = run_build(project, server)
        assert result.returncode == 0, result.stdout + result.stderr
    assert not (public / "blog" / "second-article").exists()
    assert "/blog/second-article/" not in (public / "blog" / "index.html").read_text()
    assert "/blog/second-article/" not in (public / "feed.xml").read_text()
    assert (public / "blog" / "first-article" / "index.html").is_file()


def test_cms_failure_exits_3_and_leaves_site_and_store_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import headwater, snapshot_tree, stores_of

    import headwater.contentful.sync as sync

    # Retries back off for real in production; here they need not wait.
    monkeypatch.setattr(
        sync, "open_snapshot", functools.partial(sync.open_snapshot, sleep=lambda s: None)
    )
    project = make_project(tmp_path / "site")
    with ContentfulServer(FakeSpace.from_fixtures(FIXTURES)) as server:
        monkeypatch.setenv("CONTENTFUL_SPACE_ID", server.space.space_id)
        monkeypatch.setenv("CONTENTFUL_ENVIRONMENT", server.space.environment)
        monkeypatch.setenv("CONTENTFUL_DELIVERY_TOKEN", DELIVERY_TOKEN)
        monkeypatch.setenv("CONTENTFUL_HOST", server.url)
        assert headwater(project, "build").exit_code == 0
    site = snapshot_tree(project / "public")
    store = stores_of(project / ".cache" / "headwater" / "contentful")

    result = headwater(project, "build")  # the server is gone: every attempt is refused
    assert result.exit_code == 3, result.output
    assert "did not answer GET /spaces/" in result.output and DELIVERY_TOKEN not in result.output
    assert snapshot_tree(project / "public") == site
    assert stores_of(project / ".cache" / "headwater" / "contentful") == store


def test_build_after_a_webhook_waits_until_the_cdn_shows_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import copy
    import json

    from support import headwater

    import headwater.contentful.sync as sync

    monkeypatch.setattr(sync, "FRESHNESS_DELAYS", (0.0, 0.0, 0.0))
    project = make_project(tmp_path / "site")
    space = FakeSpace.from_fixtures(FIXTURES)
    second = space.items["Entry:4ZxCvBnM2qWeRtYuIoPlKj"]
    fresh = copy.deepcopy(second)
    fresh["sys"].update(id="FreshEntry0000000000001", revision=1)
    fresh["fields"]["title"] = {"en-US": "A Fresh Article"}
    fresh["fields"]["slug"] = {"en-US": "a-fresh-article"}
    with ContentfulServer(space) as server:
        for name, value in (
            ("CONTENTFUL_SPACE_ID", space.space_id),
            ("CONTENTFUL_ENVIRONMENT", space.environment),
            ("CONTENTFUL_DELIVERY_TOKEN", DELIVERY_TOKEN),
            ("CONTENTFUL_HOST", server.url),
        ):
            monkeypatch.setenv(name, value)
        assert headwater(project, "build").exit_code == 0

        # The webhook announces the entry, but the CDN shows it only on the third sync.
        answer = server.answer
        syncs = [0]

        def lagging(path: str, query: dict[str, str], token: str) -> tuple[int, dict[str, object]]:
            if path.endswith("/sync"):
                syncs[0] += 1
                if syncs[0] == 3:
                    space.publish(fresh)
            return answer(path, query, token)

        monkeypatch.setattr(server, "answer", lagging)
        change = {
            "kind": "Entry",
            "id": "FreshEntry0000000000001",
            "version": 1,
            "topic": "ContentManagement.Entry.publish",
            "title": "A Fresh Article",
        }
        monkeypatch.setenv("INCOMING_HOOK_BODY", json.dumps({"changes": [change]}))
        with caplog.at_level("INFO", logger="headwater"):
            result = headwater(project, "build")
    assert result.exit_code == 0, result.output
    assert syncs[0] == 3
    assert (
        "waiting 0 s for Contentful's CDN to show entry 'A Fresh Article' publish v1" in caplog.text
    )
    assert (project / "public" / "blog" / "a-fresh-article" / "index.html").is_file()
