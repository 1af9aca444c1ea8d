"""`headwater webhook`: a real uvicorn receiver on 127.0.0.1, real HTTP requests, a journal in
memory, and builds counted through the queue's injected build function. The queue runs on a
hand-moved clock, so a batch is built exactly when a test says so, and no test waits on
wall-clock time. (Restarts, kills and retries of the real command: test_receiver.py.)"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from support import PUBLISH, SECRET, FakeClock, headwater, make_project, payload, signed

from headwater.builders import CHANGES_ENV, Forwarder, SubprocessBuilder
from headwater.changes import Change, summarise
from headwater.coalesce import RebuildQueue
from headwater.errors import BuildFailedError
from headwater.journal import Journal
from headwater.serve import bind_socket
from headwater.webhook import MAX_BODY, WEBHOOK_PATH, Receiver, create_app, settle_in

WAIT = 30.0
"""Generous bound for every wait: only reached when the behaviour under test is broken."""


@dataclass
class Builds:
    """The injected build function: records each batch; can block on a gate, or fail."""

    batches: list[frozenset[Change]] = field(default_factory=list)
    gate: threading.Event | None = None
    failures: int = 0

    def __call__(self, changes: frozenset[Change]) -> str:
        self.batches.append(changes)
        if self.gate is not None:
            self.gate.wait(WAIT)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the build broke")
        return "ok"


@dataclass
class Running:
    port: int
    receiver: Receiver
    queue: RebuildQueue[Change, object]
    clock: FakeClock
    builds: Builds

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")

    def publish(self, entry_id: str = "abc", version: int = 3, **options: Any) -> int:
        status, _ = self.request("POST", WEBHOOK_PATH, *signed(entry_id, version, **options))
        return status

    def build_now(self, count: int) -> None:
        """Let the queued batch come due, and wait until `count` builds have finished."""
        self.clock.advance(100)
        assert self.queue.wait_for(lambda s: s.builds >= count, WAIT)

    def assert_nothing_queued(self) -> None:
        status = self.queue.status()
        assert (status.queued, status.builds, status.state) == (0, 0, "idle")
        assert self.receiver.journal.pending() == []

    def status(self) -> dict[str, Any]:
        code, answer = self.request("GET", "/status")
        assert code == 200
        return answer


@contextmanager
def receiver_running(
    builds: Callable[[frozenset[Change]], object] | None = None,
    *,
    secret: str | None = SECRET,
    preview: bool = False,
    space: str | None = None,
    journal: Journal | None = None,
) -> Iterator[Running]:
    """The receiver's app under uvicorn in a thread, its queue on a FakeClock."""
    clock = FakeClock()
    recorder = builds if isinstance(builds, Builds) else Builds()
    queue: RebuildQueue[Change, object] = RebuildQueue(
        builds or recorder, quiet=0.05, max_delay=50, clock=clock
    )
    clock.on_advance(queue.wake)
    journal = journal or Journal(":memory:")
    queue.subscribe(settle_in(journal))
    receiver = Receiver(queue=queue, journal=journal, secret=secret, preview=preview, space=space)
    config = uvicorn.Config(create_app(receiver), lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    with bind_socket("127.0.0.1", 0) as sock:
        # The socket already listens: requests wait in its backlog until uvicorn accepts them.
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        queue.start()
        thread.start()
        try:
            yield Running(sock.getsockname()[1], receiver, queue, clock, recorder)
        finally:
            server.should_exit = True
            thread.join(WAIT)
            assert queue.stop(WAIT)
            assert not thread.is_alive()
            journal.close()


@pytest.fixture
def running() -> Iterator[Running]:
    with receiver_running() as running:
        yield running


def test_signed_publish_queues_one_build(running: Running) -> None:
    assert running.publish("abc", 7) == 202
    assert running.queue.status().queued == 1
    running.build_now(1)
    [batch] = running.builds.batches
    assert batch == {Change(kind="Entry", id="abc", topic=PUBLISH, version=7, seq=1)}
    assert running.receiver.journal.pending() == []


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda: (payload("abc", 4), signed("abc", 3)[1]), 403, "does not match"),
        (lambda: signed(secret="w" * 64), 403, "does not match"),
        (lambda: (payload("abc", 3), {"X-Contentful-Topic": PUBLISH}), 401, "unsigned"),
        (lambda: signed(timestamp=int((time.time() - 60) * 1000)), 401, "expired"),
        (lambda: signed(body=b"{not json"), 400, "not JSON"),
        (lambda: signed(body=b'{"sys": {}}'), 400, "no sys.id"),
    ],
    ids=["tampered-body", "wrong-secret", "missing-header", "expired", "non-json", "no-id"],
)
def test_bad_requests_are_refused_and_queue_nothing(
    running: Running,
    caplog: pytest.LogCaptureFixture,
    make: Callable[[], tuple[bytes, dict[str, str]]],
    status: int,
    reason: str,
) -> None:
    body, headers = make()
    got, answer = running.request("POST", WEBHOOK_PATH, body, headers)
    assert got == status
    assert reason in answer["error"]
    running.assert_nothing_queued()
    assert any(
        reason in r.getMessage() and "nothing queued" in r.getMessage() for r in caplog.records
    )


def test_tampered_topic_is_refused(running: Running) -> None:
    body, headers = signed()
    headers["X-Contentful-Topic"] = "ContentManagement.Entry.delete"
    assert running.request("POST", WEBHOOK_PATH, body, headers)[0] == 403
    running.assert_nothing_queued()


def test_get_is_refused_with_405(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    status, answer = running.request("GET", WEBHOOK_PATH)
    assert status == 405
    running.assert_nothing_queued()
    assert "method GET not allowed" in caplog.text


def test_declared_2_mib_body_is_refused_before_it_is_sent(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    _, headers = signed()
    with closing(http.client.HTTPConnection("127.0.0.1", running.port, timeout=WAIT)) as conn:
        conn.putrequest("POST", WEBHOOK_PATH)
        for name, value in {**headers, "Content-Length": str(2 * 1024 * 1024)}.items():
            conn.putheader(name, value)
        conn.endheaders()  # and not a byte of the body: the answer must come without it
        response = conn.getresponse()
        assert response.status == 413
        response.read()
    running.assert_nothing_queued()
    assert "2097152 bytes declared" in caplog.text


def test_streamed_body_over_1_mib_is_refused_while_streaming(running: Running) -> None:
    _, headers = signed()
    chunks = [b" " * 65536] * (MAX_BODY // 65536) + [b"{"]
    with closing(http.client.HTTPConnection("127.0.0.1", running.port, timeout=WAIT)) as conn:
        conn.request(
            "POST",
            WEBHOOK_PATH,
            body=iter(chunks),
            headers={**headers, "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert "while streaming" in json.loads(response.read())["error"]
    running.assert_nothing_queued()


def test_body_of_exactly_1_mib_is_read(running: Running) -> None:
    data = payload("abc", 3)
    body = data + b" " * (MAX_BODY - len(data))
    _, headers = signed(body=body)
    assert running.request("POST", WEBHOOK_PATH, body, headers)[0] == 202


def test_repeated_idempotency_key_counts_once(running: Running) -> None:
    assert running.publish("abc", 3, key="delivery-1") == 202
    status, answer = running.request("POST", WEBHOOK_PATH, *signed("abc", 4, key="delivery-1"))
    assert (status, answer["status"]) == (200, "duplicate")
    assert running.publish("abc", 4, key="delivery-2") == 202
    running.build_now(1)
    assert {change.version for change in running.builds.batches[0]} == {3, 4}


def test_burst_builds_once_and_changes_during_a_build_build_once_more() -> None:
    builds = Builds(gate=threading.Event())
    with receiver_running(builds) as running:
        for number in range(50):
            assert running.publish(f"entry-{number}", 1) == 202
        assert running.queue.status().queued == 50
        running.clock.advance(100)
        assert running.queue.wait_for(lambda s: s.state == "building", WAIT)
        for number in range(10):
            assert running.publish(f"late-{number}", 2) == 202
        assert running.queue.status().queued == 10
        assert builds.gate is not None
        builds.gate.set()
        assert running.queue.wait_for(lambda s: s.builds == 1, WAIT)
        running.build_now(2)
        assert running.queue.wait_idle(WAIT)
        assert [len(batch) for batch in builds.batches] == [50, 10]
        assert {c.id for c in builds.batches[1]} == {f"late-{n}" for n in range(10)}
        assert running.queue.status().builds == 2


def test_failed_build_shows_in_status_and_the_next_event_builds_it_again() -> None:
    builds = Builds(failures=1)
    with receiver_running(builds) as running:
        assert running.publish("abc", 1) == 202
        running.build_now(1)
        answer = running.status()
        last = answer["last_build"]
        assert (answer["state"], last["result"], last["error"]) == (
            "held",
            "failed",
            "the build broke",
        )
        assert answer["last_error"] == (
            "the receiver failed unexpectedly (RuntimeError); see its log"
        )
        assert (answer["attempts"], answer["next_retry"]) == (1, None)
        assert answer["pending"]["count"] == 1
        assert [c["attempts"] for c in answer["pending"]["changes"]] == [1]
        assert last["started"] and last["finished"] and last["duration"] >= 0
        assert running.publish("abc", 2) == 202
        assert running.status()["queued"] == 2
        running.build_now(2)
        answer = running.status()
        assert (answer["builds"], answer["last_build"]["result"]) == (2, "succeeded")
        assert answer["last_build"]["error"] is None
        assert answer["last_error"] is None
        assert answer["pending"] == {"count": 0, "oldest_age_seconds": None, "changes": []}
        assert {c.version for c in builds.batches[1]} == {1, 2}


def test_status_lists_what_is_pending(running: Running) -> None:
    assert running.publish("e1", 4, title="What Causes PTSD?") == 202
    assert running.publish("e2", 1, title="Sleep") == 202
    answer = running.status()
    assert (answer["mode"], answer["verified"], answer["space"]) == ("build", True, None)
    pending = answer["pending"]
    assert pending["count"] == 2
    assert 0 <= pending["oldest_age_seconds"] < WAIT
    assert [(c["kind"], c["id"], c["topic"], c["title"]) for c in pending["changes"]] == [
        ("Entry", "e1", PUBLISH, "What Causes PTSD?"),
        ("Entry", "e2", PUBLISH, "Sleep"),
    ]
    assert all(c["received_at"].endswith("Z") for c in pending["changes"])


def test_healthz(running: Running) -> None:
    assert running.request("GET", "/healthz") == (200, {"ok": True})


def test_healthz_fails_when_a_change_has_waited_past_the_alert_threshold() -> None:
    # The journal stamps changes 1000 s in the past: as if they had waited that long.
    journal = Journal(":memory:", now=lambda: time.time() - 1000)
    with receiver_running(Builds(failures=1), journal=journal) as running:
        assert running.request("GET", "/healthz") == (200, {"ok": True})
        assert running.publish("abc", 1) == 202
        code, answer = running.request("GET", "/healthz")
        assert code == 503
        assert answer["ok"] is False
        assert "the oldest has waited 10" in answer["reason"]
        assert "alert after 900 s" in answer["reason"]
        running.build_now(1)  # fails: the reason says why it is still waiting
        assert (
            "last error: the receiver failed unexpectedly"
            in running.request("GET", "/healthz")[1]["reason"]
        )


def test_a_payload_from_another_space_or_environment_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with receiver_running(space="space-a") as running:
        for space, environment in [("space-b", "master"), ("space-a", "staging"), (None, "")]:
            body, headers = signed("abc", 1, space=space, environment=environment)
            code, answer = running.request("POST", WEBHOOK_PATH, body, headers)
            assert code == 403
            assert "this receiver serves space-a/master" in answer["error"]
        running.assert_nothing_queued()
        assert running.status()["space"] == "space-a/master"
        assert running.publish("abc", 1, space="space-a") == 202
    refused = [r.getMessage() for r in caplog.records if "rejected (403)" in r.getMessage()]
    assert len(refused) == 3
    assert "the payload is from space space-b, environment master" in refused[0]


def test_new_webhooks_are_refused_while_stopping(running: Running) -> None:
    running.receiver.stopping.set()
    code, answer = running.request("POST", WEBHOOK_PATH, *signed("abc", 1))
    assert (code, answer["error"]) == (503, "the receiver is shutting down")
    running.assert_nothing_queued()


def test_a_journal_that_cannot_write_means_no_2xx(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(change: object, key: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(running.receiver.journal, "accept", refuse)
    code, answer = running.request("POST", WEBHOOK_PATH, *signed("abc", 1))
    assert (code, answer["error"]) == (503, "the change could not be journaled; not accepted")
    assert running.queue.status().queued == 0


@pytest.mark.parametrize(
    "topic",
    ["ContentManagement.Entry.save", "ContentManagement.Entry.auto_save", "Other.Thing.happen"],
)
def test_drafts_and_other_topics_are_acknowledged_and_ignored(running: Running, topic: str) -> None:
    status, answer = running.request("POST", WEBHOOK_PATH, *signed(topic=topic))
    assert (status, answer["status"]) == (200, "ignored")
    running.assert_nothing_queued()


def test_preview_receiver_listens_to_drafts() -> None:
    with receiver_running(preview=True) as running:
        assert running.publish(topic="ContentManagement.Entry.auto_save") == 202
        assert running.queue.status().queued == 1


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("ContentManagement.Entry.unpublish", "Entry"),
        ("ContentManagement.Entry.delete", "Entry"),
        ("ContentManagement.Entry.archive", "Entry"),
        ("ContentManagement.Asset.publish", "Asset"),
        ("ContentManagement.ContentType.publish", "ContentType"),
    ],
)
def test_site_changing_topics_queue_a_change(running: Running, topic: str, kind: str) -> None:
    assert running.publish("abc", 5, topic=topic, title="What Causes PTSD?") == 202
    running.build_now(1)
    [change] = running.builds.batches[0]
    assert (change.kind, change.id, change.version, change.title) == (
        kind,
        "abc",
        5,
        "What Causes PTSD?",
    )
    assert change.full == (kind == "ContentType")


def test_insecure_receiver_accepts_unsigned_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="headwater")
    with receiver_running(secret=None) as running:
        body = payload("abc", 1)
        headers = {"X-Contentful-Topic": PUBLISH}
        assert running.request("POST", WEBHOOK_PATH, body, headers)[0] == 202
        assert running.request("GET", WEBHOOK_PATH)[0] == 405
    lines = [r.getMessage() for r in caplog.records if r.name == "headwater.webhook"]
    assert len(lines) == 2
    assert all(line.startswith("[INSECURE") for line in lines)


def test_summary_names_counts_and_titles() -> None:
    changes = [
        Change("Entry", f"e{n}", PUBLISH, 1, title)
        for n, title in enumerate(["What Causes PTSD?", "Sleep", "Grief", "Anxiety"])
    ]
    changes.append(Change("Asset", "a1", "ContentManagement.Asset.unpublish", 2))
    text = summarise(changes)
    assert text.startswith("Contentful: 1 asset unpublished, 4 entries published — ")
    assert text.endswith(", …")
    assert summarise(changes[:1]) == "Contentful: 1 entry published — What Causes PTSD?"


@dataclass
class HookServer:
    """A stand-in for Netlify's build hook on 127.0.0.1: records every request."""

    requests: list[tuple[str, dict[str, list[str]], Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.requests) >= count, WAIT)


@contextmanager
def hook_server() -> Iterator[HookServer]:
    hook = HookServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            url = urlsplit(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with hook.cond:
                hook.requests.append((url.path, parse_qs(url.query), body))
                hook.cond.notify_all()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        hook.url = f"http://127.0.0.1:{server.server_address[1]}/build_hooks/abc123"
        try:
            yield hook
        finally:
            server.shutdown()
            thread.join(WAIT)


def test_forward_calls_the_build_hook_once_per_batch() -> None:
    with hook_server() as hook:
        forwarder = Forwarder(hook.url)
        try:
            with receiver_running(forwarder) as running:
                assert running.publish("e1", 4, title="What Causes PTSD?") == 202
                assert running.publish("e2", 2, title="Sleep and Mood") == 202
                assert running.publish("e3", 9, title="Grief") == 202
                running.build_now(1)
                assert running.queue.status().last is not None
                assert running.queue.status().last.ok  # type: ignore[union-attr]
        finally:
            forwarder.close()
        assert len(hook.requests) == 1
        path, query, body = hook.requests[0]
        assert path == "/build_hooks/abc123"
        assert query["trigger_title"] == [
            "Contentful: 3 entries published — What Causes PTSD?, Sleep and Mood, Grief"
        ]
        assert body["changes"] == [
            {"kind": "Entry", "id": f"e{n}", "version": v, "topic": PUBLISH, "title": t}
            for n, v, t in [(1, 4, "What Causes PTSD?"), (2, 2, "Sleep and Mood"), (3, 9, "Grief")]
        ]


def test_webhook_command_without_secret_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTENTFUL_WEBHOOK_SECRET", raising=False)
    result = headwater(tmp_path, "webhook", "--build", "--port", "0")
    assert result.exit_code == 2
    assert "CONTENTFUL_WEBHOOK_SECRET is not set" in result.output


def test_webhook_command_needs_one_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTFUL_WEBHOOK_SECRET", SECRET)
    assert headwater(tmp_path, "webhook", "--port", "0").exit_code == 2


def test_webhook_command_forwards_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    env.update(CONTENTFUL_WEBHOOK_SECRET=SECRET, PYTHONUNBUFFERED="1")
    log = tmp_path / "webhook.log"
    with hook_server() as hook:
        command = [sys.executable, "-m", "headwater", "--project", str(tmp_path), "webhook"]
        command += ["--port", "0", "--forward", hook.url, "--quiet", "0", "--max-delay", "0"]
        with (
            log.open("w") as stderr,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
            ) as process,
        ):
            try:
                assert process.stdout is not None
                ready, _, _ = select.select([process.stdout], [], [], WAIT)
                line = process.stdout.readline() if ready else ""
                assert line.startswith("Listening on http://127.0.0.1:"), log.read_text()
                port = urlsplit(line.split()[2]).port
                assert port is not None
                body, headers = signed("e1", 4, title="What Causes PTSD?")
                with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)) as c:
                    c.request("POST", WEBHOOK_PATH, body=body, headers=headers)
                    assert c.getresponse().status == 202
                assert hook.wait_for(1), log.read_text()
                process.send_signal(signal.SIGTERM)
                assert process.wait(WAIT) == 0, log.read_text()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert hook.requests[0][1]["trigger_title"] == [
            "Contentful: 1 entry published — What Causes PTSD?"
        ]
        assert "queued" in log.read_text()


def test_subprocess_build_passes_changes_and_deploys(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    deploy = (
        f"{sys.executable} -c \"import os; open('deployed.json', 'w')"
        f".write(os.environ['{CHANGES_ENV}'])\""
    )
    builder = SubprocessBuilder(project, deploy_command=deploy, env=env)
    change = Change("Entry", "abc", PUBLISH, 3, "Title")
    assert builder(frozenset({change})) == "built and deployed"
    assert (project / "public" / "index.html").is_file()
    assert json.loads((project / "deployed.json").read_text()) == [change.as_dict()]


def test_subprocess_build_failure_raises_and_skips_deploy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    project = tmp_path / "empty"
    project.mkdir()
    builder = SubprocessBuilder(project, deploy_command="touch deployed", env=env)
    with pytest.raises(BuildFailedError, match="the build failed because of its configuration"):
        builder(frozenset({Change("Entry", "abc", PUBLISH, 3)}))
    assert not (project / "deployed").exists()


def test_signed_unpublish_removes_the_article_from_page_listing_and_feed(tmp_path: Path) -> None:
    from contentful_server import DELIVERY_TOKEN, ContentfulServer, FakeSpace
    from support import REPO

    project = make_project(tmp_path / "site")
    space = FakeSpace.from_fixtures(REPO / "tests" / "fixtures" / "contentful")
    with ContentfulServer(space) as delivery:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
        env.update(
            CONTENTFUL_SPACE_ID=space.space_id,
            CONTENTFUL_ENVIRONMENT=space.environment,
            CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
            CONTENTFUL_HOST=delivery.url,
        )
        builder = SubprocessBuilder(project, env=env)
        with receiver_running(builder) as running:
            assert running.publish("4ZxCvBnM2qWeRtYuIoPlKj", 1, title="A Second Article") == 202
            running.build_now(1)
            public = project / "public"
            assert (public / "blog" / "second-article" / "index.html").is_file()
            assert "/blog/second-article/" in (public / "feed.xml").read_text()

            space.delete("Entry", "4ZxCvBnM2qWeRtYuIoPlKj")
            body, headers = signed(
                "4ZxCvBnM2qWeRtYuIoPlKj", 2, topic="ContentManagement.Entry.unpublish"
            )
            status, _ = running.request("POST", WEBHOOK_PATH, body, headers)
            assert status == 202
            running.build_now(2)
            assert running.queue.status().last is not None
    assert not (public / "blog" / "second-article").exists()
    assert "/blog/second-article/" not in (public / "blog" / "index.html").read_text()
    assert "/blog/second-article/" not in (public / "feed.xml").read_text()
