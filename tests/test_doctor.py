"""`headwater doctor` says what a build would use and whether it can work, against the local
Contentful stand-in; it never prints a secret."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from contentful_server import DELIVERY_TOKEN, ContentfulServer, FakeSpace
from support import REPO, build, make_project

from headwater.cli import main

FIXTURES = REPO / "tests" / "fixtures" / "contentful"


def doctor(project: Path, env: dict[str, str]) -> Result:
    """`headwater doctor` with exactly these variables of ours set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
    unset: dict[str, str | None] = {k: None for k in os.environ if k not in clean}
    return CliRunner().invoke(
        main, ["--project", str(project), "doctor"], env={**unset, **env}, catch_exceptions=False
    )


def local_model() -> list[dict[str, Any]]:
    """cms_schema/ as the Delivery API lists content types."""
    return [json.loads(p.read_text()) for p in sorted((REPO / "cms_schema").glob("*.json"))]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "site")


@pytest.fixture
def server() -> Iterator[ContentfulServer]:
    space = FakeSpace.from_fixtures(FIXTURES)
    space.content_types = local_model()
    with ContentfulServer(space) as running:
        yield running


def cms_env(server: ContentfulServer, token: str = DELIVERY_TOKEN) -> dict[str, str]:
    return {
        "CONTENTFUL_SPACE_ID": server.space.space_id,
        "CONTENTFUL_DELIVERY_TOKEN": token,
        "CONTENTFUL_HOST": server.url,
    }


def line(result: Result, name: str) -> str:
    found = [row for row in result.output.splitlines() if row[5:].startswith(f"{name}:")]
    assert len(found) == 1, result.output
    return found[0]


def test_a_local_project_is_described_and_its_stale_public_folder_noticed(project: Path) -> None:
    result = doctor(project, {})
    assert result.exit_code == 0, result.output
    assert line(result, "python").startswith("  ok python: 3.")
    assert "headwater 0.1.0" in line(result, "packages") and "jinja2 " in line(result, "packages")
    assert "CONTENTFUL_SPACE_ID is not set" in line(result, "source")
    assert "set: none" in line(result, "variables")
    assert line(result, "public/").startswith("warn public/: no build yet")

    assert build(project).exit_code == 0
    assert line(doctor(project, {}), "public/").startswith("  ok public/: current")
    article = project / "content" / "article" / "first-article.md"
    article.write_text(article.read_text() + "\nMore.\n")
    stale = line(doctor(project, {}), "public/")
    assert stale.startswith("warn public/: out of date: 1 files changed"), stale
    assert "content/article/first-article.md" in stale


def test_a_working_space_with_the_same_model_is_all_ok(
    project: Path, server: ContentfulServer
) -> None:
    result = doctor(project, cms_env(server))
    assert result.exit_code == 0, result.output
    assert f"CONTENTFUL_SPACE_ID is set (space {server.space.space_id})" in line(result, "source")
    variables = line(result, "variables")
    assert "set: CONTENTFUL_SPACE_ID, CONTENTFUL_DELIVERY_TOKEN, CONTENTFUL_HOST;" in variables
    assert "works" in line(result, "contentful")
    assert line(result, "content model").startswith("  ok content model: cms_schema/ matches")
    assert DELIVERY_TOKEN not in result.output
    assert server.paths("/content_types")


def test_a_model_that_differs_from_cms_schema_is_named(
    project: Path, server: ContentfulServer
) -> None:
    topic = next(t for t in server.space.content_types if t["sys"]["id"] == "topic")
    topic["fields"].append({"id": "colour", "name": "Colour", "type": "Symbol"})
    server.space.content_types = [t for t in server.space.content_types if t is not topic] + [
        {**topic, "name": "Subject"}
    ]
    result = doctor(project, cms_env(server))
    assert result.exit_code == 0, result.output
    model = line(result, "content model")
    assert model.startswith("warn content model: cms_schema/ differs from the space")
    assert 'topic: ~ name: "Subject" → "Topic"' in model
    assert "- field colour: in the space only" in model


def test_a_refused_token_fails_with_the_cms_exit_code_and_names_the_variable(
    project: Path, server: ContentfulServer
) -> None:
    result = doctor(project, cms_env(server, token="not-the-token-1234"))
    assert result.exit_code == 3, result.output
    check = line(result, "contentful")
    assert check.startswith("FAIL contentful:")
    assert "CONTENTFUL_DELIVERY_TOKEN" in check
    assert "not-the-token-1234" not in result.output


def test_a_space_without_a_token_is_a_configuration_failure(project: Path) -> None:
    result = doctor(project, {"CONTENTFUL_SPACE_ID": "space1"})
    assert result.exit_code == 2
    assert "CONTENTFUL_DELIVERY_TOKEN is not set" in line(result, "contentful")


def test_an_unreachable_cms_fails_with_exit_3(project: Path) -> None:
    env = {
        "CONTENTFUL_SPACE_ID": "space1",
        "CONTENTFUL_DELIVERY_TOKEN": "secret-token-5678",
        "CONTENTFUL_HOST": "http://127.0.0.1:9",  # the discard port: nothing listens there
        "CONTENTFUL_TIMEOUT": "2",
    }
    result = doctor(project, env)
    assert result.exit_code == 3
    assert line(result, "contentful").startswith("FAIL contentful: Contentful did not answer")
    assert "secret-token-5678" not in result.output


def test_a_project_without_a_model_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = doctor(empty, {})
    assert result.exit_code == 2
    assert line(result, "cms_schema").startswith("FAIL cms_schema: no content types found")
    assert line(result, "content").startswith("FAIL content:")
