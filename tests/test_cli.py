"""The command line as a newcomer meets it: help, version, verbosity anywhere, the summary
line, one log format, relative --out, every problem at once (text and JSON), and the exit
codes of the documented failures."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from support import build, headwater, make_project, snapshot_tree

from headwater import __version__
from headwater.cli import main
from headwater.logs import LineFormatter, wants_colour
from headwater.progress import BuildProgress

ARTICLE = "content/article/first-article.md"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONTENTFUL_SPACE_ID", "CONTENTFUL_MANAGEMENT_TOKEN", "CONTENTFUL_DELIVERY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return make_project(tmp_path / "site")


def break_three_files(project: Path) -> None:
    """An impossible date, a YAML value of the wrong type and a misspelt field, each in a
    file of its own."""
    article = project / ARTICLE
    article.write_text(article.read_text().replace("2026-01-15", "2026-13-45"))
    about = project / "content" / "page" / "about.md"
    about.write_text(re.sub(r"(?m)^title: .*$", "title: [About, us]", about.read_text()))
    topic = project / "content" / "topic" / "testing.md"
    topic.write_text(topic.read_text().replace("summary:", "summry:"))


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


@pytest.mark.parametrize(
    "args",
    [["--version"], ["build", "--version"], ["schema", "push", "--version"]],
)
def test_version_is_answered_before_or_after_the_command(project: Path, args: list[str]) -> None:
    result = headwater(project, *args)
    assert result.exit_code == 0
    assert result.output.startswith(f"headwater {__version__} (Python ")


@pytest.mark.parametrize(
    "args",
    [
        ["-h"],
        ["build", "-h"],
        ["serve", "-h"],
        ["validate", "-h"],
        ["doctor", "-h"],
        ["schema", "push", "-h"],
        ["webhook", "-h"],
        ["preview", "-h"],
        ["new", "-h"],
        ["pull", "-h"],
    ],
)
def test_every_command_answers_dash_h_with_examples(project: Path, args: list[str]) -> None:
    result = headwater(project, *args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert "Example" in result.output
    assert "-v, --verbose" in result.output


def test_the_command_list_gives_every_description_whole(project: Path) -> None:
    result = headwater(project, "-h")
    section = result.output.split("Commands:")[1].split("Examples:")[0]
    listing = " ".join(section.split())
    names = re.findall(r"(?m)^  (\w+)  ", section)
    assert names == [
        "build",
        "serve",
        "validate",
        "new",
        "doctor",
        "pull",
        "schema",
        "preview",
        "webhook",
    ]
    for name in names:
        command = main.commands[name]
        first_line = " ".join((command.help or "").split("\n\n")[0].split())
        assert first_line.rstrip(".") in listing, name
    assert "..." not in listing


def test_verbose_and_quiet_work_before_or_after_the_command(project: Path) -> None:
    assert build(project).exit_code == 0
    edit = project / ARTICLE
    for args in (["-v", "build"], ["build", "-v"]):
        edit.write_text(edit.read_text() + "\nMore.\n")
        result = headwater(project, *args, "--source", "local")
        assert result.exit_code == 0, result.output
        assert re.search(r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO ", result.output), args
    quiet = headwater(project, "build", "--source", "local", "-q", "--full")
    assert quiet.exit_code == 0
    assert "WARNING" not in quiet.output  # the placeholder warning is not shown
    assert quiet.output.startswith("Built ")
    plain = headwater(project, "build", "--source", "local", "--full")
    assert " WARNING 2 placeholders remain" in plain.output


def test_the_summary_counts_pages_and_other_files_apart(project: Path) -> None:
    result = build(project)
    assert result.exit_code == 0, result.output
    files = [p for p in (project / "public").rglob("*") if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    others = len(files) - len(pages)
    expected = (
        rf"Built {len(pages)} pages and {others} other files from local content in content/ "
        rf"in \d+\.\d\d s → \S*public/ \({len(files)} files: {len(files)} written, 0 unchanged, "
        r"0 removed; \d+ rendered\)"
    )
    assert re.search(expected, result.output), result.output


def test_a_relative_out_is_taken_from_the_current_folder(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = build(project, "--out", "site-out")
    assert result.exit_code == 0, result.output
    assert (elsewhere / "site-out" / "index.html").is_file()
    assert not (project / "site-out").exists()
    assert "→ site-out/ " in result.output
    # Without --out the project's own public/ is still the default.
    assert build(project).exit_code == 0
    assert (project / "public" / "index.html").is_file()


def test_three_problems_in_three_files_are_all_reported_and_nothing_is_published(
    project: Path,
) -> None:
    assert build(project).exit_code == 0
    before = snapshot_tree(project / "public")
    break_three_files(project)
    result = build(project)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(
        line.startswith(f"{ARTICLE}:6: publishDate: [type]") and "2026-13-45" in line
        for line in lines
    ), result.output
    assert any(line.startswith("content/page/about.md:2: title: [type]") for line in lines)
    assert any(
        line.startswith("content/topic/testing.md:3: summry: [unknownField]")
        and "did you mean 'summary'" in line
        for line in lines
    ), result.output
    assert "3 content problems; nothing was published." in result.output
    assert "Traceback" not in result.output
    assert snapshot_tree(project / "public") == before


def test_validate_as_json_gives_one_object_per_problem(project: Path) -> None:
    break_three_files(project)
    result = headwater(project, "validate", "--source", "local", "--format", "json")
    assert result.exit_code == 1
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 3
    keys = {"file", "entry", "line", "field", "rule", "message", "value", "link"}
    assert all(set(o) == keys for o in objects)
    by_file = {o["file"]: o for o in objects}
    assert by_file[ARTICLE] == {
        "file": ARTICLE,
        "entry": None,
        "line": 6,
        "field": "publishDate",
        "rule": "type",
        "message": by_file[ARTICLE]["message"],
        "value": "2026-13-45",
        "link": None,
    }
    assert by_file["content/page/about.md"]["value"] == ["About", "us"]
    assert by_file["content/topic/testing.md"]["rule"] == "unknownField"
    assert "3 content problems" in result.stderr
    assert not (project / "public").exists()


def test_a_cms_problem_in_json_carries_its_web_app_link() -> None:
    from headwater.cli import problem_json
    from headwater.model import Problem

    link = "https://app.contentful.com/spaces/s1/environments/master/entries/e1"
    problem = Problem(f"article “A title” ({link})", "summary", "size", "too long", "x" * 3)
    assert problem_json(problem) == {
        "file": None,
        "entry": "article “A title”",
        "line": None,
        "field": "summary",
        "rule": "size",
        "message": "too long",
        "value": "xxx",
        "link": link,
    }


def test_validate_as_json_prints_no_object_when_all_is_valid(project: Path) -> None:
    result = headwater(project, "validate", "--source", "local", "--format", "json")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "are valid" in result.stderr


def test_log_lines_are_coloured_only_on_a_terminal_without_no_color() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_colour(Terminal(), {})
    assert not wants_colour(Terminal(), {"NO_COLOR": "1"})
    assert not wants_colour(io.StringIO(), {})
    record = logging.LogRecord("hw", logging.WARNING, "x.py", 1, "careful %s", ("x",), None)
    record.created = 0.0
    assert LineFormatter().format(record) == "1970-01-01T00:00:00Z WARNING careful x"
    coloured = LineFormatter(colour=True).format(record)
    assert coloured != "1970-01-01T00:00:00Z WARNING careful x"
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == "1970-01-01T00:00:00Z WARNING careful x"


def test_a_piped_command_logs_plain_lines(project: Path) -> None:
    command = [sys.executable, "-m", "headwater", "--project", str(project), "build", "-v"]
    command += ["--source", "local"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING) \S", line) for line in lines
    ), lines
    assert "\x1b[" not in result.stderr
    assert result.stdout.startswith("Built ")


def test_the_progress_bar_appears_only_after_its_delay_and_only_on_a_terminal() -> None:
    now = [0.0]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with BuildProgress(console, clock=lambda: now[0]) as progress:
        progress("rendering", 10, 100)
        assert screen.getvalue() == ""  # a quick build never shows a bar
        now[0] = 2.5
        progress("rendering", 50, 100)
        assert "rendering" in screen.getvalue() and "50/100" in screen.getvalue()
        now[0] = 3.0
        progress("initial sync", 300, 0)  # the Sync API gives no total: a count
        assert "initial sync" in screen.getvalue() and "300/?" in screen.getvalue()
    piped = io.StringIO()
    with BuildProgress(Console(file=piped, width=80), clock=lambda: now[0] + 10) as progress:
        progress("rendering", 50, 100)
    assert piped.getvalue() == ""


def test_an_entry_broken_in_its_own_file_causes_no_second_problem_in_another(
    project: Path,
) -> None:
    author = project / "content" / "author" / "dr-test.md"
    author.write_text(author.read_text().replace("role: Medical Director", "slug: [dr, test]"))
    result = headwater(project, "validate", "--source", "local")
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("content/")]
    assert len(problems) == 1, result.output
    assert problems[0].startswith("content/author/dr-test.md:4: slug: [type]")
    assert "1 content problem;" in result.output
