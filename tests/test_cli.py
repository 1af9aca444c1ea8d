"""The command line names what is missing and maps failures to the documented exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import headwater, make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONTENTFUL_SPACE_ID", "CONTENTFUL_MANAGEMENT_TOKEN", "CONTENTFUL_DELIVERY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return make_project(tmp_path / "site")


def test_schema_push_without_credentials_names_the_variables(project: Path) -> None:
    result = headwater(project, "schema", "push", "--dry-run")
    assert result.exit_code == 2
    assert "CONTENTFUL_SPACE_ID" in result.output and "CONTENTFUL_MANAGEMENT_TOKEN" in result.output


def test_pull_without_a_space_is_a_configuration_error(project: Path) -> None:
    result = headwater(project, "pull")
    assert result.exit_code == 2
    assert "CONTENTFUL_SPACE_ID" in result.output


def test_contentful_build_without_a_token_publishes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENTFUL_SPACE_ID", "space1")
    result = headwater(project, "build")
    assert result.exit_code == 2
    assert "CONTENTFUL_DELIVERY_TOKEN" in result.output
    assert not (project / "public").exists()
