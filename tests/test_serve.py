"""`headwater serve`: the reload script added only on the fly, an event for every build, the
overlay for invalid content in a real browser, and a prompt exit on Ctrl-C."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from support import CHROMIUM_ARGS, headwater, make_project

WAIT = 30.0
"""Generous bound for every wait: only reached when the behaviour under test is broken."""
ARTICLE = "content/article/first-article.md"
ARTICLE_URL = "/blog/first-article/"
SUMMARY = "summary: A short summary of the first article."
TOO_LONG_SUMMARY = "summary: " + "An overlong summary. " * 9
RELOAD_TAG = b'<script src="/__headwater/reload.js" data-build="1"></script>'
SERVED = Path(".cache/headwater/serve/site")
"""Where the dev server builds, in the project: never public/."""
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) \S")


@dataclass
class Server:
    """A running `headwater serve` and where it writes its log."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with closing(self.connect()) as connection:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()


def server_env() -> dict[str, str]:
    """No CMS settings (nothing reaches the network); unbuffered so the URL line comes at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


@contextmanager
def dev_server(project: Path) -> Iterator[Server]:
    """`python -m headwater serve --port 0` on project, stopped with Ctrl-C (SIGINT) after."""
    log = project.parent / f"{project.name}-serve.log"
    command = [sys.executable, "-m", "headwater", "--project", str(project), "-v", "serve"]
    command += ["--source", "local", "--port", "0"]
    with (
        log.open("w", encoding="utf-8") as stderr,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=server_env()
        ) as process,
    ):
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], WAIT)
            line = process.stdout.readline() if ready else ""
            if not line.startswith("Serving http://"):
                pytest.fail(f"the server did not start: {line!r}\n{log.read_text()}", pytrace=False)
            yield Server(url=line.split()[1], process=process, log=log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(WAIT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    pytest.fail(f"the server ignored Ctrl-C\n{log.read_text()}", pytrace=False)


def edit(project: Path, relative: str, old: str, new: str) -> None:
    path = project / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


class EventStream:
    """The dev server's server-sent events, read as a browser's EventSource would."""

    def __init__(self, server: Server) -> None:
        self.connection = server.connect()
        self.connection.request("GET", "/__headwater/events")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")

    def close(self) -> None:
        self.response.close()
        self.connection.close()

    def next(self) -> dict[str, Any] | None:
        """The next `state` event's data; None when the server ends the stream."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            if not line:
                return None
            line = line.rstrip("\n")
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
            elif fields.get("event") == "state":
                data: dict[str, Any] = json.loads(fields["data"])
                return data
            else:
                fields = {}

    def until(self, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Skip events until one is accepted: an editor's save may take more than one build."""
        while True:
            state = self.next()
            assert state is not None, "the server ended the event stream"
            if accept(state):
                return state


@contextmanager
def events(server: Server) -> Iterator[EventStream]:
    stream = EventStream(server)
    try:
        yield stream
    finally:
        stream.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One server for the tests that only read."""
    project = make_project(tmp_path_factory.mktemp("served") / "site")
    with dev_server(project) as server:
        yield server, project


def test_pages_get_the_reload_script_but_the_files_on_disk_do_not(
    served: tuple[Server, Path],
) -> None:
    server, project = served
    status, headers, body = server.get(ARTICLE_URL)

    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"<h1>The First Article</h1>" in body
    assert body.count(b"/__headwater/reload.js") == 1
    before_body = body[: body.lower().rindex(b"</body>")]
    assert before_body.endswith(RELOAD_TAG)

    on_disk = project / SERVED / "blog" / "first-article" / "index.html"
    assert on_disk.is_file()
    assert b"__headwater" not in on_disk.read_bytes()
    assert b'href="http://127.0.0.1:' in on_disk.read_bytes()  # the server's own base URL
    assert not (project / "public").exists()  # public/ stays deployable: serve never writes it
    files = [path for path in (project / SERVED).rglob("*") if path.is_file()]
    assert len(files) > 10
    assert not [path for path in files if b"__headwater" in path.read_bytes()]


def test_only_html_responses_are_changed(served: tuple[Server, Path]) -> None:
    server, project = served
    for path in ("/robots.txt", "/sitemap.xml", "/feed.xml"):
        status, _, body = server.get(path)
        assert status == 200
        assert body == (project / SERVED / path.lstrip("/")).read_bytes()


def test_the_reload_script_is_served_by_the_dev_server(served: tuple[Server, Path]) -> None:
    server, _ = served
    status, headers, body = server.get("/__headwater/reload.js")

    assert status == 200
    assert headers["content-type"].startswith("text/javascript")
    assert b'new EventSource("/__headwater/events")' in body
    assert b"location.reload()" in body


def test_urls_resolve_as_on_netlify(served: tuple[Server, Path]) -> None:
    server, project = served
    assert server.get("/")[0] == 200
    status, headers, _ = server.get("/blog")
    assert (status, headers["location"]) == (307, "/blog/")

    status, headers, body = server.get("/no/such/page/")
    assert status == 404
    not_found = (project / SERVED / "404.html").read_bytes()
    assert body.replace(RELOAD_TAG, b"") == not_found
    assert server.get("/../cms_schema/article.json")[0] == 404
    assert server.get("/%2e%2e/%2e%2e/etc/passwd")[0] == 404


def test_every_build_is_an_event_and_a_failed_one_names_the_problem(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    page = project / SERVED / "blog" / "first-article" / "index.html"
    with dev_server(project) as server, events(server) as stream:
        assert stream.next() == {"build": 1, "ok": True, "error": "", "problems": []}

        edit(project, ARTICLE, "Some text.", "Some edited text.")
        good = stream.until(lambda s: s["build"] > 1)
        assert good["ok"]
        assert "Some edited text." in page.read_text()
        # Each build is logged (before its event goes out) with its page count and time.
        lines = server.log.read_text().splitlines()
        built = [line for line in lines if " built " in line or " rebuilt " in line]
        assert re.search(r" INFO built \d+ pages in \d+ ms$", built[0]), lines
        assert re.search(rf" INFO rebuilt \d+ pages? in \d+ ms \({ARTICLE}\)$", built[1]), lines

        edit(project, ARTICLE, SUMMARY, TOO_LONG_SUMMARY)
        failed = stream.until(lambda s: not s["ok"])
        assert failed["build"] == good["build"]
        assert failed["error"] == "1 content problem"
        [problem] = failed["problems"]
        assert (problem["file"], problem["field"], problem["rule"]) == (ARTICLE, "summary", "size")
        assert "at most 160 characters" in problem["message"]
        assert "Some edited text." in page.read_text()  # the last good site stays
        status, _, body = server.get(ARTICLE_URL)
        assert status == 200
        assert f'data-build="{good["build"]}"'.encode() in body

        edit(project, ARTICLE, TOO_LONG_SUMMARY, SUMMARY)
        assert stream.until(lambda s: s["ok"])["build"] > good["build"]

        edit(project, "templates/article.html", "{% block content %}", "{% block content %}{{")
        failed = stream.until(lambda s: not s["ok"])
        assert failed["problems"] == []
        assert "article.html" in failed["error"]


def test_ctrl_c_ends_open_event_streams_and_exits_promptly(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    with dev_server(project) as server, events(server) as stream:
        assert stream.next() is not None
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(WAIT) == 0
        assert stream.next() is None
    log = server.log.read_text()
    assert "graceful shutdown exceeded" not in log
    assert "Traceback" not in log
    # One format for every line, whoever logs it (uvicorn too), and no colour in a file.
    assert log.splitlines() and all(LOG_LINE.match(line) for line in log.splitlines()), log
    assert "\x1b[" not in log


def test_serve_checks_its_configuration_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "site")
    monkeypatch.delenv("CONTENTFUL_SPACE_ID", raising=False)
    monkeypatch.delenv("CONTENTFUL_DELIVERY_TOKEN", raising=False)
    result = headwater(project, "serve", "--source", "contentful", "--port", "0")
    assert result.exit_code == 2
    assert "CONTENTFUL_SPACE_ID" in result.output
    assert "Serving" not in result.output
    assert not (project / ".cache" / "headwater" / "serve").exists()


@pytest.mark.browser
def test_an_open_page_follows_edits_and_shows_invalid_content_as_an_overlay(
    tmp_path: Path, chromium_executable: Path
) -> None:
    project = make_project(tmp_path / "site")
    timeout = WAIT * 1000
    with dev_server(project) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(server.url.rstrip("/") + ARTICLE_URL)
            main = page.locator("#main")
            overlay = page.locator("#headwater-overlay")
            expect(main).to_contain_text("Some text.")

            edit(project, ARTICLE, "Some text.", "Some freshly edited text.")
            expect(main).to_contain_text("Some freshly edited text.", timeout=timeout)

            edit(project, ARTICLE, SUMMARY, TOO_LONG_SUMMARY)
            expect(overlay).to_be_visible(timeout=timeout)
            expect(overlay).to_contain_text("The build failed")
            row = overlay.locator("tbody tr")
            expect(row).to_have_count(1)
            expect(row.locator("td").nth(0)).to_have_text(ARTICLE)
            expect(row.locator("td").nth(1)).to_have_text("summary")
            expect(row.locator("td").nth(2)).to_have_text("size")
            expect(main).to_contain_text("Some freshly edited text.")  # the last good page

            # The overlay closes with its button (which has the focus) or with Escape, and
            # the next failed build shows it again.
            close = overlay.get_by_role("button", name="Close (Escape)")
            expect(close).to_be_focused()
            close.click()
            expect(overlay).to_have_count(0)
            edit(project, ARTICLE, TOO_LONG_SUMMARY, TOO_LONG_SUMMARY + "More. ")
            expect(overlay).to_be_visible(timeout=timeout)
            page.keyboard.press("Escape")
            expect(overlay).to_have_count(0)
            edit(project, ARTICLE, TOO_LONG_SUMMARY + "More. ", TOO_LONG_SUMMARY)
            expect(overlay).to_be_visible(timeout=timeout)

            edit(project, ARTICLE, TOO_LONG_SUMMARY, "summary: A corrected summary.")
            expect(page.locator(".lead")).to_have_text("A corrected summary.", timeout=timeout)
            expect(overlay).to_have_count(0)
            expect(main).to_contain_text("Some freshly edited text.")
        finally:
            browser.close()


def test_the_dev_server_answers_old_and_removed_urls_as_netlify_would(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    offer = project / "content" / "page" / "old-offer.md"
    offer.write_text("---\ntitle: Old offer\nsummary: Soon gone.\n---\n\nOffer.\n")
    redirect = project / "content" / "redirect" / "spring.md"
    redirect.parent.mkdir()
    redirect.write_text("---\nfrom: /spring/\ntoEntry: about\n---\n")
    with dev_server(project) as server, events(server) as stream:
        first = stream.until(lambda s: s["ok"])
        offer.unlink()
        stream.until(lambda s: s["ok"] and s["build"] > first["build"])

        status, headers, _ = server.get("/spring/")
        assert (status, headers["location"]) == (301, "/about/")
        status, _, body = server.get("/old-offer/")
        assert status == 410
        assert b"This page has been removed" in body and RELOAD_TAG[:20] in body
        assert server.get("/old-offer")[0] == 410  # with or without the slash, as on Netlify
