"""`headwater preview`: the editors' live draft preview, in a subprocess against the local
Preview API — an open tab follows an auto_save, strangers are kept out, one save costs a
handful of requests by id, and whatever editors do, the preview equals a full preview build."""

from __future__ import annotations

import copy
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from contentful_server import PREVIEW_TOKEN, ContentfulServer, FakeSpace
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import CHROMIUM_ARGS, REPO, SECRET, make_project, signed, snapshot_tree

WAIT = 60.0
FIXTURES = REPO / "tests" / "fixtures" / "contentful"
ACCESS = "preview-access-" + "k" * 40
ARTICLE = "1QwErT5yUiOpAsDfGhJkLz"
SECOND = "4ZxCvBnM2qWeRtYuIoPlKj"
WEBHOOK = "/webhooks/contentful"


@dataclass
class Preview:
    url: str
    process: subprocess.Popen[str]
    log: Path
    space: FakeSpace
    server: ContentfulServer
    project: Path

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()

    def save(self, entry_id: str, version: int, topic: str = "auto_save") -> None:
        """Tell the service what Contentful's webhook would say after an editor's action."""
        body, headers = signed(
            entry_id,
            version,
            topic=f"ContentManagement.Entry.{topic}",
            space=self.space.space_id,
            environment=self.space.environment,
        )
        status, _, answer = self.request("POST", WEBHOOK, body, headers)
        assert status == 202, answer


def env_for(server: ContentfulServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
    env.update(
        CONTENTFUL_SPACE_ID=server.space.space_id,
        CONTENTFUL_ENVIRONMENT=server.space.environment,
        CONTENTFUL_PREVIEW_TOKEN=PREVIEW_TOKEN,
        CONTENTFUL_PREVIEW_HOST=server.url,
        CONTENTFUL_WEBHOOK_SECRET=SECRET,
        HEADWATER_PREVIEW_SECRET=ACCESS,
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def preview_service(root: Path) -> Iterator[Preview]:
    project = make_project(root / "site")
    space = FakeSpace.from_fixtures(FIXTURES)
    log = root / "preview.log"
    with ContentfulServer(space) as server:
        command = [sys.executable, "-m", "headwater", "--project", str(project), "preview"]
        command += ["--port", "0"]
        with (
            log.open("w") as stderr,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env_for(server)
            ) as process,
        ):
            try:
                assert process.stdout is not None
                ready, _, _ = select.select([process.stdout], [], [], WAIT)
                line = process.stdout.readline() if ready else ""
                if not line.startswith("Previewing drafts at http://"):
                    pytest.fail(f"the preview did not start: {line!r}\n{log.read_text()}")
                url = line.split()[3]
                yield Preview(url, process, log, space, server, project)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(WAIT)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


def revise(space: FakeSpace, entry_id: str, **fields: Any) -> int:
    """An editor's edit, as the Preview API shows it after the save: its new version."""
    item = copy.deepcopy(space.items[f"Entry:{entry_id}"])
    item["sys"]["revision"] = item["sys"].get("revision", 1) + 1
    item["sys"]["version"] = item["sys"]["revision"] * 2
    for name, value in fields.items():
        item["fields"][name] = {"en-US": value}
    space.publish(item)
    return int(item["sys"]["version"])


class Events:
    """The service's live-reload events, read with the preview's cookie."""

    def __init__(self, preview: Preview, cookie: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", preview.port, timeout=WAIT)
        self.conn.request("GET", "/__headwater/events", headers={"Cookie": cookie})
        self.response = self.conn.getresponse()
        assert self.response.status == 200

    def next_build(self, after: int) -> dict[str, Any]:
        """The first state event of a build after `after` (a good or a failed one)."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            assert line, "the service ended the event stream"
            line = line.rstrip("\n")
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
                continue
            if fields.get("event") == "state":
                state: dict[str, Any] = json.loads(fields["data"])
                if state["build"] > after or not state["ok"]:
                    return state
            fields = {}

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def sign_in(preview: Preview) -> str:
    """The cookie an editor's "Open preview" link sets."""
    status, headers, _ = preview.request("GET", f"/__preview/entry/{ARTICLE}?secret={ACCESS}")
    assert status == 303 and headers["location"] == "/blog/first-article/"
    return headers["set-cookie"].split(";", 1)[0]


def test_strangers_are_refused_and_the_entry_link_signs_an_editor_in(tmp_path: Path) -> None:
    with preview_service(tmp_path) as preview:
        for path in ("/", "/blog/first-article/", "/__headwater/events", "/__headwater/reload.js"):
            status, headers, body = preview.request("GET", path)
            assert status == 401, path
            assert headers["x-robots-tag"].startswith("noindex")
            assert b"Open preview" in body or path.endswith((".js", "events"))
        bad = preview.request("GET", f"/__preview/entry/{ARTICLE}?secret=guess")
        assert bad[0] == 401
        cookie = sign_in(preview)
        status, headers, body = preview.request(
            "GET", "/blog/first-article/", headers={"Cookie": cookie}
        )
        assert status == 200 and headers["x-robots-tag"].startswith("noindex")
        assert b"Draft preview" in body and b'name="robots" content="noindex"' in body
        unsigned = preview.request("POST", WEBHOOK, b"{}", {"X-Contentful-Topic": "x"})
        assert unsigned[0] == 401


def test_one_auto_save_costs_a_handful_of_requests_by_id(tmp_path: Path) -> None:
    with preview_service(tmp_path) as preview:
        events = Events(preview, sign_in(preview))
        try:
            first = events.next_build(-1)["build"]
            preview.server.requests.clear()
            version = revise(preview.space, ARTICLE, title="Retitled While Typing")
            preview.save(ARTICLE, version)
            state = events.next_build(first)
        finally:
            events.close()
        assert state["ok"], state
        requests = preview.server.requests
        assert 1 <= len(requests) <= 3, requests
        assert all("sys.id" in r for r in requests)  # by id, never a listing of the space
        page = preview.project / ".cache" / "headwater" / "preview" / "site"
        assert "Retitled While Typing" in (page / "blog/first-article/index.html").read_text()


ACTIONS = st.sampled_from(["save", "retitle-second", "publish", "delete", "unpublish-new"])


def full_preview(preview: Preview) -> dict[str, bytes]:
    """A full preview build of the same drafts, with the service's base URL."""
    command = [sys.executable, "-m", "headwater", "--project", str(preview.project), "build"]
    command += ["--preview", "--full", "--out", str(preview.project / "full")]
    command += ["--base-url", preview.url]
    result = subprocess.run(
        command, env=env_for(preview.server), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return {n: d for n, (d, _) in snapshot_tree(preview.project / "full").items()}


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=4))
@example(actions=["publish", "delete"])  # a page that lived and died within the session
def test_the_patched_preview_equals_a_full_preview_build(actions: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, preview_service(Path(tmp)) as preview:
        events = Events(preview, sign_in(preview))
        build = events.next_build(-1)["build"]
        space = preview.space
        try:
            for n, action in enumerate(actions):
                if action == "save":
                    preview.save(ARTICLE, revise(space, ARTICLE, summary=f"Summary, take {n}."))
                elif action == "retitle-second":
                    preview.save(SECOND, revise(space, SECOND, title=f"Second, take {n}"))
                elif action == "publish":
                    new = copy.deepcopy(space.items[f"Entry:{SECOND}"])
                    new["sys"].update(id=f"new{n}", revision=1, version=2)
                    new["fields"]["slug"] = {"en-US": f"new-draft-{n}"}
                    new["fields"]["title"] = {"en-US": f"New Draft {n}"}
                    space.publish(new)
                    preview.save(f"new{n}", 2, "save")
                else:
                    made = [k.split(":", 1)[1] for k in space.items if k.startswith("Entry:new")]
                    if not made:
                        continue
                    space.delete("Entry", made[0])
                    preview.save(made[0], 3, "delete" if action == "delete" else "unpublish")
                state = events.next_build(build)
                assert state["ok"], state
                build = state["build"]
        finally:
            events.close()
        site = preview.project / ".cache" / "headwater" / "preview" / "site"
        patched = {n: d for n, (d, _) in snapshot_tree(site).items()}
        full = full_preview(preview)
    # The URL history remembers pages that lived during the session (a deleted draft answers
    # 410); a build from nothing cannot know them. Everything else must be equal, and the
    # history must hold every URL the full build knows.
    remembered = ("_headwater/url-history.json", "_redirects")
    history, fresh = (json.loads(t.pop(remembered[0])) for t in (patched, full))
    patched.pop(remembered[1]), full.pop(remembered[1])
    assert patched == full, actions
    for key, page in fresh["pages"].items():
        assert set(page["urls"]) <= set(history["pages"][key]["urls"]), actions


@pytest.mark.browser
def test_an_open_preview_tab_shows_a_saved_title_without_a_reload(
    tmp_path: Path, chromium_executable: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with preview_service(tmp_path) as preview, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{preview.url}/__preview/entry/{ARTICLE}?secret={ACCESS}")
            expect(page.locator("h1")).to_have_text("The First Article")
            page.evaluate("window.notReloaded = true")
            version = revise(preview.space, ARTICLE, title="A Title Typed a Moment Ago")
            preview.save(ARTICLE, version)
            expect(page.locator("h1")).to_have_text("A Title Typed a Moment Ago", timeout=30_000)
            assert page.evaluate("window.notReloaded === undefined")  # the service reloaded it
            stranger = browser.new_page()  # another browser profile: no cookie
            response = stranger.goto(f"{preview.url}/blog/first-article/")
            assert response is not None and response.status == 401
        finally:
            browser.close()
