"""Incremental builds from Contentful equal full builds, whatever is published: entries reached
through RichText bodies (embedded, linked inline), assets, unpublished entries and model
changes included. Every build runs against a local Delivery API on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from contentful_server import DELIVERY_TOKEN, ContentfulServer, FakeSpace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPO, make_project, snapshot_tree

from headwater.cli import main

FIXTURES = REPO / "tests" / "fixtures" / "contentful"
ARTICLE = "1QwErT5yUiOpAsDfGhJkLz"
SECOND_ARTICLE = "4ZxCvBnM2qWeRtYuIoPlKj"
ABOUT = "6yVbq1XhJk3NnA0eWmRzC5"
AUTHOR = "3hKs9QwE2rTyUu1IoPaSdF"
TOPIC = "5GzXcV4bNm1LkJh8gFdSaQ"
ASSET = "0AsDfGhJkLqWeRtYuIoPzX"
SETTINGS = "7fGx2Lh0QmWZ3kYp1sTnVa"
FIGURE = "figure1"


def run(project: Path, server: ContentfulServer, *args: str) -> Result:
    env = {
        "CONTENTFUL_SPACE_ID": server.space.space_id,
        "CONTENTFUL_ENVIRONMENT": server.space.environment,
        "CONTENTFUL_DELIVERY_TOKEN": DELIVERY_TOKEN,
        "CONTENTFUL_HOST": server.url,
        "CONTENTFUL_PREVIEW_TOKEN": "",
        "HEADWATER_CHANGES": "",
        "INCOMING_HOOK_BODY": "",
        "URL": "",
        "CONTEXT": "",
    }
    command = ["--project", str(project), "build", "--base-url", "https://example.test", *args]
    return CliRunner().invoke(main, command, env=env, catch_exceptions=False)


def bytes_of(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot_tree(folder).items()}


def assert_incremental_equals_full(project: Path, server: ContentfulServer, note: object) -> None:
    """Build incrementally into public/, then everything afresh into full/: same bytes."""
    result = run(project, server)
    assert result.exit_code == 0, result.output
    full = run(project, server, "--full", "--out", str(project / "full"))
    assert full.exit_code == 0, full.output
    assert bytes_of(project / "public") == bytes_of(project / "full"), note


def item(space: FakeSpace, kind: str, item_id: str) -> dict[str, Any]:
    return copy.deepcopy(space.items[f"{kind}:{item_id}"])


def republish(space: FakeSpace, published: dict[str, Any], **fields: Any) -> None:
    """Publish a new revision with some fields (en-US values) replaced."""
    sys = published["sys"]
    sys["revision"] += 1
    sys["updatedAt"] = f"2026-03-{1 + sys['revision'] % 28:02d}T10:00:00.000Z"
    for name, value in fields.items():
        published["fields"][name] = {"en-US": value}
    space.publish(published)


def link(kind: str, target: str) -> dict[str, Any]:
    return {"sys": {"type": "Link", "linkType": kind, "id": target}}


def paragraph(*inlines: dict[str, Any]) -> dict[str, Any]:
    return {"nodeType": "paragraph", "data": {}, "content": list(inlines)}


def text(value: str) -> dict[str, Any]:
    return {"nodeType": "text", "value": value, "marks": [], "data": {}}


def body_with_references() -> dict[str, Any]:
    """A body that embeds the About page and an image (not the article's hero image), and
    links to the About page inline."""
    return {
        "nodeType": "document",
        "data": {},
        "content": [
            paragraph(
                text("Read "),
                {
                    "nodeType": "entry-hyperlink",
                    "data": {"target": link("Entry", ABOUT)},
                    "content": [text("about us")],
                },
                text(" first."),
            ),
            {"nodeType": "embedded-entry-block", "data": {"target": link("Entry", ABOUT)}},
            {"nodeType": "embedded-asset-block", "data": {"target": link("Asset", FIGURE)}},
        ],
    }


@contextmanager
def served_project(root: Path) -> Iterator[tuple[Path, ContentfulServer]]:
    """The fixture space, plus an image that only an article body will show."""
    project = make_project(root / "site")
    space = FakeSpace.from_fixtures(FIXTURES)
    figure = item(space, "Asset", ASSET)
    figure["sys"]["id"] = FIGURE
    figure["fields"]["description"] = {"en-US": "A river in the morning"}
    space.publish(figure)
    with ContentfulServer(space, page_size=100) as server:
        yield project, server


def article_html(project: Path, slug: str = "first-article") -> str:
    return (project / "public" / "blog" / slug / "index.html").read_text()


def test_entries_and_assets_in_a_body_are_followed_by_incremental_builds(tmp_path: Path) -> None:
    with served_project(tmp_path) as (project, server):
        space = server.space
        republish(space, item(space, "Entry", ARTICLE), body=body_with_references())
        assert_incremental_equals_full(project, server, "embedded")
        assert 'href="/about/"' in article_html(project)

        # The embedded and inline-linked page is retitled: the article shows the new title.
        republish(space, item(space, "Entry", ABOUT), title="About the Clinic")
        assert_incremental_equals_full(project, server, "page retitled")
        assert "About the Clinic" in article_html(project)

        # It moves (and the menu with it): the article's links follow.
        republish(space, item(space, "Entry", ABOUT), slug="clinic")
        settings = item(space, "Entry", SETTINGS)
        menu = [m.replace("/about/", "/clinic/") for m in settings["fields"]["navigation"]["en-US"]]
        republish(space, settings, navigation=menu)
        assert_incremental_equals_full(project, server, "page moved")
        html = article_html(project)
        assert 'href="/clinic/"' in html and 'href="/about/"' not in html

        # The embedded image is replaced by a new file of another size.
        asset = item(space, "Asset", FIGURE)
        file = asset["fields"]["file"]["en-US"]
        file["url"] = file["url"].replace("pic.jpg", "river.jpg").replace("5d414", "77e01")
        file["details"]["image"] = {"width": 1600, "height": 900}
        republish(space, asset)
        assert_incremental_equals_full(project, server, "asset replaced")
        assert "river.jpg" in article_html(project)


def test_bodies_are_read_from_the_store_on_demand_not_copied_into_the_content_cache(
    tmp_path: Path,
) -> None:
    with served_project(tmp_path) as (project, server):
        republish(server.space, item(server.space, "Entry", ARTICLE), body=body_with_references())
        assert run(project, server).exit_code == 0
        (cache,) = (project / ".cache" / "headwater" / "content").glob("*.sqlite3")
        db = sqlite3.connect(cache)
        with db:
            texts = db.execute("SELECT entry_id, value FROM texts").fetchall()
            # Forget every rendered body: the next build must read each one again.
            db.execute("DELETE FROM html")
        db.close()
        assert ARTICLE in {entry_id for entry_id, _ in texts}
        assert {value for _, value in texts} == {None}
        template = project / "templates" / "article.html"
        template.write_text(template.read_text() + "{# every article renders again #}\n")
        assert_incremental_equals_full(project, server, "bodies read from the store")
        html = article_html(project)
        assert "<h2 id=" in html and 'href="/about/"' in html


def test_a_body_embedding_an_unpublished_entry_is_a_problem_naming_both(tmp_path: Path) -> None:
    with served_project(tmp_path) as (project, server):
        space = server.space
        republish(space, item(space, "Entry", ARTICLE), body=body_with_references())
        assert run(project, server).exit_code == 0
        before = bytes_of(project / "public")
        space.delete("Entry", ABOUT)
        result = run(project, server)
        assert result.exit_code == 1
        assert f"entries/{ARTICLE}" in result.output  # the article, by its web-app link
        assert ABOUT in result.output and "body: [link]" in result.output
        assert bytes_of(project / "public") == before


OPERATIONS = st.sampled_from(
    ["publish", "retitle", "retitle-page", "unpublish", "delete", "asset", "model", "embed"]
)


def apply(project: Path, space: FakeSpace, operation: str, n: int) -> None:
    """One editor's action in the space (or a developer's, for the model)."""
    extra = sorted(
        key.split(":", 1)[1]
        for key, value in space.items.items()
        if key.startswith("Entry:") and value["sys"]["id"].startswith("new")
    )
    if operation == "publish" or (operation in ("unpublish", "delete") and not extra):
        new = item(space, "Entry", SECOND_ARTICLE)
        new["sys"]["id"] = f"new{n}"
        new["sys"]["revision"] = 0
        new["fields"]["slug"] = {"en-US": f"new-article-{n}"}
        new["fields"]["title"] = {"en-US": f"New Article {n}"}
        new["fields"]["publishDate"] = {"en-US": f"2026-02-{1 + n % 27:02d}"}
        new["fields"]["topics"] = {"en-US": [link("Entry", TOPIC)]}
        republish(space, new)
    elif operation == "retitle":
        target = extra[n % len(extra)] if extra else SECOND_ARTICLE
        republish(space, item(space, "Entry", target), title=f"Retitled {n}")
    elif operation == "retitle-page":
        republish(space, item(space, "Entry", ABOUT), title=f"About, version {n}")
    elif operation in ("unpublish", "delete"):
        space.delete("Entry", extra[n % len(extra)])
    elif operation == "asset":
        asset = item(space, "Asset", FIGURE if n % 2 else ASSET)
        asset["fields"]["description"] = {"en-US": f"A blue square, take {n}"}
        republish(space, asset)
    elif operation == "embed":
        republish(space, item(space, "Entry", ARTICLE), body=body_with_references())
    elif operation == "model":
        path = project / "cms_schema" / "topic.json"
        model = json.loads(path.read_text())
        model["description"] = f"Topics, model revision {n}"
        path.write_text(json.dumps(model, indent=2))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPERATIONS, min_size=1, max_size=5))
def test_incremental_output_equals_a_full_build_from_contentful(operations: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, served_project(Path(tmp)) as (project, server):
        assert run(project, server).exit_code == 0
        for n, operation in enumerate(operations):
            apply(project, server.space, operation, n)
            assert_incremental_equals_full(project, server, (operations, n))


def test_two_concurrent_builds_of_one_project_both_finish_with_one_builds_output(
    tmp_path: Path,
) -> None:
    """Two builds started while a third holds the project: both wait, saying so, then both
    finish, one after the other, and the site is what one build makes."""
    import os
    import select
    import subprocess
    import sys

    from headwater.locks import hold

    with served_project(tmp_path) as (project, server):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
        env.update(
            CONTENTFUL_SPACE_ID=server.space.space_id,
            CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
            CONTENTFUL_HOST=server.url,
        )
        command = [sys.executable, "-m", "headwater", "--project", str(project), "build"]
        command += ["--base-url", "https://example.test"]
        lock = project / ".cache" / "headwater" / "locks" / "project.lock"
        with hold(lock, "the test"):
            builds = [
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)
            ]
            for process in builds:
                assert process.stderr is not None
                ready, _, _ = select.select([process.stderr], [], [], 60)
                assert ready, "the build neither waited nor said so"
                assert b"waiting for it" in process.stderr.readline()
        outputs = [b.communicate(timeout=120) for b in builds]
        assert [b.returncode for b in builds] == [0, 0], outputs
        full = run(project, server, "--full", "--out", str(project / "full"))
        assert full.exit_code == 0, full.output
        assert bytes_of(project / "public") == bytes_of(project / "full")
