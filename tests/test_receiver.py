"""The receiver's promise, tested on the real command in a subprocess: once it answers 2xx, the
change reaches a successful build through retries, SIGTERM, SIGKILL and restarts; content
failures are reported, not retried in a loop; the build hook's secret path never shows; and a
configuration that cannot work is refused before listening."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import pytest
from hook_server import SECRET_PATH, SECRET_QUERY, ScriptedHook
from support import SECRET, headwater, make_project, signed, write

from headwater.changes import Change
from headwater.journal import journal_in
from headwater.webhook import WEBHOOK_PATH

WAIT = 30.0
"""Generous bound for every wait: only reached when the behaviour under test is broken."""
POLL = 0.02
FAST_RETRIES = ["--retry-min", "0.05", "--retry-max", "0.2"]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def receiver_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "URL"))}
    env.update(CONTENTFUL_WEBHOOK_SECRET=SECRET, PYTHONUNBUFFERED="1", **extra)
    return env


class ReceiverProcess:
    """`headwater webhook` in a subprocess: its port, its /status, its log (stderr, appended
    to one file across restarts) and its stdout."""

    def __init__(self, project: Path, args: list[str], log: Path, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "headwater", "--project", str(project), "webhook"]
        self.command = [*command, "--port", "0", *args]
        self.log = log
        self.env = env
        self.stdout = ""
        self.statuses: list[str] = []
        """Every /status answer, as text."""
        self.port = 0
        self._stderr: TextIO | None = None
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> ReceiverProcess:
        self._stderr = self.log.open("a")
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=self.env
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WAIT)
        line = self.process.stdout.readline() if ready else ""
        self.stdout += line
        assert line.startswith("Listening on http://127.0.0.1:"), self.log.read_text()
        port = urlsplit(line.split()[2]).port
        assert port is not None
        self.port = port
        return self

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")

    def publish(self, entry_id: str, version: int = 1, **options: Any) -> tuple[int, Any]:
        return self.request("POST", WEBHOOK_PATH, *signed(entry_id, version, **options))

    def status(self) -> dict[str, Any]:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request("GET", "/status")
            text = conn.getresponse().read().decode()
        self.statuses.append(text)
        answer: dict[str, Any] = json.loads(text)
        return answer

    def wait_status(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll /status until predicate holds (failing after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while True:
            answer = self.status()
            if predicate(answer):
                return answer
            assert time.monotonic() < deadline, f"{answer}\n{self.log.read_text()}"
            time.sleep(POLL)

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(how)
        code = self.process.wait(WAIT)
        self._finish()
        return code

    def _finish(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.stdout += self.process.stdout.read()
            self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    """Start receivers on one project and one --state folder; all are stopped at the end."""
    started: list[ReceiverProcess] = []

    def start(*args: str, project: Path = tmp_path, env: dict[str, str] | None = None) -> Any:
        state = ["--state", str(tmp_path / "state")]
        log = tmp_path / "receiver.log"
        process = ReceiverProcess(project, [*state, *args], log, env or receiver_env())
        started.append(process)
        return process.start()

    yield start
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process._finish()


def forwarded(call_body: Any) -> list[str]:
    return [change["id"] for change in call_body["changes"]]


def test_a_hook_answering_503_twice_then_200_gets_the_change_once(
    run: Callable[..., ReceiverProcess],
) -> None:
    with ScriptedHook(503, 503) as hook:
        receiver = run("--forward", hook.url, "--quiet", "0", *FAST_RETRIES)
        assert receiver.publish("e1", 4, title="What Causes PTSD?")[0] == 202
        assert hook.wait_for(lambda calls: any(c.status == 200 for c in calls))
        answer = receiver.wait_status(lambda s: s["pending"]["count"] == 0)
        assert receiver.stop() == 0

    assert [call.status for call in hook.calls] == [503, 503, 200]
    assert [forwarded(call.body) for call in hook.calls] == [["e1"]] * 3
    assert len(hook.succeeded()) == 1
    assert (answer["attempts"], answer["last_error"], answer["last_build"]["attempt"]) == (
        0,
        None,
        3,
    )
    log = receiver.log.read_text()
    failures = [line for line in log.splitlines() if "failed (attempt" in line]
    assert len(failures) == 2, log
    assert all(
        f"the build hook at 127.0.0.1:{hook.port} answered 503 Service Unavailable; retry in"
        in line
        for line in failures
    )
    assert all(LOG_LINE.match(line) for line in log.splitlines() if line.strip()), log


def test_sigterm_in_the_quiet_period_keeps_the_change_for_the_next_start(
    run: Callable[..., ReceiverProcess],
) -> None:
    with ScriptedHook() as hook:
        first = run("--forward", hook.url, "--quiet", "600")
        assert first.publish("e1", 2, title="Sleep and Mood")[0] == 202
        assert first.status()["state"] == "waiting"
        assert first.stop() == 0
        assert hook.calls == []
        log = first.log.read_text()
        assert "1 change(s) stay pending in" in log
        assert "for the next start" in log
        assert "will not be built" not in log

        # The same long quiet period: a restored change must not wait for it.
        second = run("--forward", hook.url, "--quiet", "600")
        assert hook.wait_for(lambda calls: len(calls) >= 1)
        second.wait_status(lambda s: s["pending"]["count"] == 0)
        assert second.stop() == 0

    assert [forwarded(call.body) for call in hook.calls] == [["e1"]]
    assert "1 change(s) pending in" in second.log.read_text()


def test_sigkill_right_after_the_2xx_loses_nothing(run: Callable[..., ReceiverProcess]) -> None:
    with ScriptedHook() as hook:
        first = run("--forward", hook.url, "--quiet", "600")
        assert first.publish("e1", 3)[0] == 202
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert hook.calls == []

        second = run("--forward", hook.url, "--quiet", "600")
        assert hook.wait_for(lambda calls: len(calls) >= 1)
        second.wait_status(lambda s: s["pending"]["count"] == 0)
        assert second.stop() == 0
    assert [forwarded(call.body) for call in hook.calls] == [["e1"]]


def test_a_replayed_delivery_after_a_restart_is_not_forwarded_again(
    run: Callable[..., ReceiverProcess],
) -> None:
    with ScriptedHook() as hook:
        first = run("--forward", hook.url, "--quiet", "0")
        assert first.publish("e1", 1, key="delivery-1")[0] == 202
        assert hook.wait_for(lambda calls: len(calls) >= 1)
        first.wait_status(lambda s: s["pending"]["count"] == 0)
        assert first.stop() == 0

        second = run("--forward", hook.url, "--quiet", "0")
        assert second.publish("e1", 1, key="delivery-1") == (
            200,
            {"status": "duplicate", "topic": "ContentManagement.Entry.publish"},
        )
        # A later, new delivery is forwarded alone: the replay joined nothing.
        assert second.publish("e2", 1, key="delivery-2")[0] == 202
        assert hook.wait_for(lambda calls: len(calls) >= 2)
        second.wait_status(lambda s: s["pending"]["count"] == 0)
        assert second.stop() == 0
    assert [forwarded(call.body) for call in hook.calls] == [["e1"], ["e2"]]


ARTICLE = """---
title: A Second Article
slug: {slug}
summary: A summary.
author: dr-test
publishDate: 2026-03-01
---

Body text.
"""
BAD_SLUG_LINE = "content/article/second-article.md:3: slug: [regexp] "


def test_a_content_failure_is_reported_and_waits_for_the_next_publish(
    tmp_path: Path, run: Callable[..., ReceiverProcess]
) -> None:
    project = make_project(tmp_path / "site")
    write(project, "article/second-article.md", ARTICLE.format(slug="Second_Article"))
    retries = ["--retry-min", "0.05", "--retry-max", "0.05"]
    receiver = run("--build", "--source", "local", "--quiet", "0", *retries, project=project)
    assert receiver.publish("e1", 1, title="A Second Article")[0] == 202
    failed = receiver.wait_status(lambda s: s["builds"] == 1)
    assert failed["last_error"].startswith(
        f"the build failed because of content: 1 problem (first: {BAD_SLUG_LINE}"
    )
    assert [line[: len(BAD_SLUG_LINE)] for line in failed["problems"]] == [BAD_SLUG_LINE]
    assert (failed["state"], failed["attempts"], failed["next_retry"]) == ("held", 1, None)
    assert failed["pending"]["count"] == 1

    # Watch for 20 times the longest retry wait: a held failure is not retried.
    watch_until = time.monotonic() + 20 * 0.05
    while time.monotonic() < watch_until:
        answer = receiver.status()
        assert (answer["builds"], answer["attempts"], answer["state"]) == (1, 1, "held")
        time.sleep(POLL)

    write(project, "article/second-article.md", ARTICLE.format(slug="second-article"))
    assert receiver.publish("e1", 2, title="A Second Article")[0] == 202
    built = receiver.wait_status(lambda s: s["builds"] == 2)
    assert receiver.stop() == 0

    assert built["last_build"]["result"] == "succeeded"
    assert (built["attempts"], built["last_error"], built["pending"]["count"]) == (0, None, 0)
    assert (project / "public" / "blog" / "second-article" / "index.html").is_file()
    log = receiver.log.read_text()
    assert log.count(BAD_SLUG_LINE) == 1, log  # the failure is logged once, with its problem
    assert "wait for the next publish (not retried)" in log


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("outage", ["connection refused", "503"])
def test_other_spaces_are_refused_and_the_hook_url_never_shows(
    run: Callable[..., ReceiverProcess], outage: str
) -> None:
    with ScriptedHook(*[503] * 1000) as hook:
        port = closed_port() if outage == "connection refused" else hook.port
        url = f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}"
        env = receiver_env(CONTENTFUL_SPACE_ID="space-a")
        receiver = run("--forward", url, "--quiet", "0", *FAST_RETRIES, env=env)

        code, answer = receiver.publish("e1", 1, space="space-b")
        assert code == 403
        assert "space-b" in answer["error"]
        assert receiver.status()["pending"]["count"] == 0

        assert receiver.publish("e2", 1, space="space-a")[0] == 202
        failing = receiver.wait_status(lambda s: s["attempts"] >= 2)
        assert receiver.stop() == 0

    expected = (
        f"could not connect to the build hook at 127.0.0.1:{port}"
        if outage == "connection refused"
        else f"the build hook at 127.0.0.1:{port} answered 503 Service Unavailable"
    )
    assert failing["last_error"] == expected
    assert failing["target"] == f"the build hook at 127.0.0.1:{port}"
    assert failing["next_retry"] is not None
    assert [c["id"] for c in failing["pending"]["changes"]] == ["e2"]
    log = receiver.log.read_text()
    assert "rejected (403): the payload is from space space-b" in log
    assert "accepting webhooks of space space-a/master only" in log
    assert expected in log
    everything = "\n".join([log, receiver.stdout, *receiver.statuses])
    for secret in (SECRET_PATH, "6f1d0c2b9e8a7f6e5d4c3b2a", SECRET_QUERY, "hunter2"):
        assert secret not in everything


# Start-up checks: through the CLI in-process; each refuses before listening, exit 2.


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CONTENTFUL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONTENTFUL_WEBHOOK_SECRET", SECRET)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"CONTENTFUL_WEBHOOK_SECRET": "short-secret"},
            ["--forward", "https://api.netlify.com/build_hooks/x"],
            "CONTENTFUL_WEBHOOK_SECRET is 12 characters long; a signing secret needs at least 32",
        ),
        ({}, ["--build"], "--build has nothing to build from: CONTENTFUL_SPACE_ID is not set"),
        (
            {"CONTENTFUL_SPACE_ID": "sp1"},
            ["--build"],
            "CONTENTFUL_DELIVERY_TOKEN is not set: an API key of space 'sp1'",
        ),
        (
            {"CONTENTFUL_SPACE_ID": "sp1", "CONTENTFUL_DELIVERY_TOKEN": "t"},
            ["--build", "--preview"],
            "CONTENTFUL_PREVIEW_TOKEN is not set",
        ),
        (
            {},
            ["--build", "--source", "contentful"],
            "CONTENTFUL_SPACE_ID and CONTENTFUL_DELIVERY_TOKEN are not set",
        ),
        ({}, ["--build", "--source", "local"], "--source local needs a content folder"),
        (
            {},
            ["--forward", "https://h/x", "--retry-min", "5", "--retry-max", "1"],
            "--retry-max must not be less than --retry-min",
        ),
    ],
    ids=["short-secret", "no-source", "no-token", "no-preview-token", "no-space", "no-content"]
    + ["retry-range"],
)
def test_a_configuration_that_cannot_work_is_refused(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    result = headwater(tmp_path, "webhook", "--port", "0", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / ".cache").exists()


@pytest.mark.parametrize(
    "url",
    [
        "api.netlify.com/build_hooks/s3cret-hook-id",
        "ftp://api.netlify.com/build_hooks/s3cret-hook-id",
        "https:///build_hooks/s3cret-hook-id",
    ],
)
def test_a_forward_url_that_is_not_absolute_http_is_refused_unrepeated(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, url: str
) -> None:
    result = headwater(tmp_path, "webhook", "--port", "0", "--forward", url)
    assert result.exit_code == 2
    assert "--forward needs an absolute http:// or https:// URL with a host" in result.output
    assert "s3cret-hook-id" not in result.output


def test_clear_pending_empties_the_journal_of_a_stopped_receiver(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    with journal_in(state) as journal:
        for n in range(2):
            journal.accept(Change("Entry", f"e{n}", "ContentManagement.Entry.publish", 1), None)
        busy = headwater(tmp_path, "webhook", "--state", str(state), "--clear-pending")
        assert busy.exit_code == 2
        assert "another headwater webhook receiver is using" in busy.output
    result = headwater(tmp_path, "webhook", "--state", str(state), "--clear-pending")
    assert result.exit_code == 0, result.output
    assert "Cleared 2 pending change(s) from" in result.output
    with journal_in(state) as journal:
        assert journal.pending() == []


def test_the_default_journal_lives_in_the_project_cache(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    result = headwater(tmp_path, "webhook", "--clear-pending")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".cache" / "headwater" / "webhook" / "journal.sqlite3").is_file()
